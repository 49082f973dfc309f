#!/bin/bash
# stop 44 exp2: K-FAC basis with a monotone Grassmann descent (kfac2), cached Fisher
cd /work/main && source /work/env.sh && source .venv/bin/activate
set -x
date
FCACHE=/work/runs44/fisher.pt FMODE=kfac2 FITERS=300 /usr/bin/time -v python /work/s44/fisher_slice.py /work/runs44/kfac2 2> /work/s44/kfac2.err | tail -1
date
andactl eval /work/runs44/kfac2 --tasks wikitext2 --limit 10 --dtype float32 2>/dev/null
date
