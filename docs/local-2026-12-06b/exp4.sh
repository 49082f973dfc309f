#!/bin/bash
# stop 44 exp4: K-FAC with per-token RMS-normalised factors (x/rms, g*rms), Adam + keep-best
cd /work/main && source /work/env.sh && source .venv/bin/activate
set -x
date
FCACHE=/work/runs44/fisher_n.pt FMODE=kfacn FBEST=1 FLR=0.01 FITERS=300 python /work/s44/fisher_slice.py /work/runs44/kfacn 2> /work/s44/kfacn.err | tail -1
date
andactl eval /work/runs44/kfacn --tasks wikitext2 --limit 10 --dtype float32 2>/dev/null
date
