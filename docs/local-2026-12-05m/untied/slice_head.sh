#!/bin/bash
# The untied random OPT-125m shape sliced at 21% WITH --slice-head: the head's input is 600 wide (8 mod 16).
set -e
cd /work/main && source /work/env.sh && source .venv/bin/activate
W=/work/s42/untied
andactl slice $W/opt-125m-untied --ratio 0.21 --slice-head --cal-samples 16 --cal-seqlen 1024 -o $W/sliced_sh 2> $W/slice_sh.err
andactl quantize $W/sliced_sh --bits 8 7 8 8 --weight-method rtn -o $W/q_sh 2> $W/q_sh.err
