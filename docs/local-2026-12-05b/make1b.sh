#!/usr/bin/env bash
set -e
source /work/env.sh
cd /work/main
.venv/bin/python -c "
import sys; sys.path.insert(0, 'benchmarks')
from pathlib import Path
from memory_scaling import make_model
print(make_model('1', Path('/work/bench31')))"
/usr/bin/time -v .venv/bin/andactl quantize /work/bench31/llama-1b --weight-method rtn --bits 8 8 8 8 --cal-samples 2 --cal-seqlen 64 -o /work/bench31/packed-1b --overwrite > /work/bench31/quantize.out 2> /work/bench31/quantize.err
du -sh /work/bench31/*
