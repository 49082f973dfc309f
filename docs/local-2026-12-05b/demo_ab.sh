#!/usr/bin/env bash
# demo-size A/B: calibration and recovery settings. Figures: WikiText-2 first 4 windows of 512.
set -uo pipefail
cd /work/main; source /work/env.sh
A=".venv/bin/andactl"; O=/work/runs/demo31
t() { local s=$SECONDS; "$@"; echo "TIME $((SECONDS-s)) s: $*" >&2; }
t $A slice smollm2-135m --ratio 0.25 --cal-samples 32 --cal-seqlen 512 -o $O/s32 --overwrite
t $A recover $O/s32 --steps 12 --batch-size 2 --seqlen 128 --held-out 2 --eval-every 12 -o $O/s32_lora12 --overwrite
t $A recover $O/s32 --full --steps 12 --batch-size 2 --seqlen 128 --held-out 2 --eval-every 12 -o $O/s32_full12 --overwrite
t $A recover $O/s32 --full --steps 30 --batch-size 4 --seqlen 128 --held-out 2 --eval-every 30 -o $O/s32_full30 --overwrite
t $A eval $O/s32 $O/s32_lora12 $O/s32_full12 $O/s32_full30 --tasks wikitext2 --seqlen 512 --limit 4
