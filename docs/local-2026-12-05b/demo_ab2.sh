#!/usr/bin/env bash
set -uo pipefail
cd /work/main; source /work/env.sh
A=".venv/bin/andactl"; O=/work/runs/demo31
t() { local s=$SECONDS; "$@"; echo "TIME $((SECONDS-s)) s: $*" >&2; }
t $A recover $O/s32 --full --steps 60 --batch-size 4 --seqlen 128 --held-out 2 --eval-every 60 -o $O/s32_full60 --overwrite
t $A slice smollm2-135m --ratio 0.25 --cal-samples 64 --cal-seqlen 512 -o $O/s64 --overwrite
t $A recover $O/s64 --full --steps 30 --batch-size 4 --seqlen 128 --held-out 2 --eval-every 30 -o $O/s64_full30 --overwrite
t $A quantize $O/s32_full30 --bits 7 8 9 7 --cal-samples 4 --cal-seqlen 256 -o $O/s32_full30_q --overwrite
t $A eval $O/s64 $O/s32_full60 $O/s64_full30 $O/s32_full30_q --tasks wikitext2 --seqlen 512 --limit 4
