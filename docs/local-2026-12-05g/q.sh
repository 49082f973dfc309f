#!/bin/bash
# demo's quantize step, output dir $1
cd /work/main && source /work/env.sh
.venv/bin/andactl quantize /work/main/runs/demo/recovered --bits 7 8 9 7 --cal-samples 4 --cal-seqlen 256 -o $1 --overwrite >/dev/null 2>$1.err
sha256sum $1/model.safetensors
