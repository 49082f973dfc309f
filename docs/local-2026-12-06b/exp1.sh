#!/bin/bash
# stop 44 exp1: gradient-aware slicing bases, 25%, 16x1024 alpaca (as /work/runs40/sliced)
cd /work/main && source /work/env.sh && source .venv/bin/activate
set -x
date
FMODE=tok /usr/bin/time -v python /work/s44/fisher_slice.py /work/runs44/tok 2> /work/s44/tok.err | tail -3
FMODE=kfac /usr/bin/time -v python /work/s44/fisher_slice.py /work/runs44/kfac 2> /work/s44/kfac.err | tail -3
date
andactl eval /work/runs40/sliced /work/runs44/tok /work/runs44/kfac --tasks wikitext2 --limit 10 --dtype float32 2>/dev/null
date
