#!/bin/bash
# stop 44 exp3: K-FAC basis, Adam on the Grassmannian with keep-best; lr 0.01 (v1 + best) and 0.003
cd /work/main && source /work/env.sh && source .venv/bin/activate
set -x
date
FCACHE=/work/runs44/fisher.pt FMODE=kfac FBEST=1 FLR=0.01 FITERS=300 python /work/s44/fisher_slice.py /work/runs44/kfacb 2> /work/s44/kfacb.err | tail -1
FCACHE=/work/runs44/fisher.pt FMODE=kfac FBEST=1 FLR=0.003 FITERS=500 python /work/s44/fisher_slice.py /work/runs44/kfacc 2> /work/s44/kfacc.err | tail -1
date
andactl eval /work/runs44/kfacb /work/runs44/kfacc --tasks wikitext2 --limit 10 --dtype float32 2>/dev/null
date
