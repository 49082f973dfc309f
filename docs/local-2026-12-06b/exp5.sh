#!/bin/bash
# stop 44 exp5: recover the K-FAC slice (defaults, --full); K-FAC with Adam lr 0.003 x 600
cd /work/main && source /work/env.sh && source .venv/bin/activate
set -x
date
/usr/bin/time -v andactl recover /work/runs44/kfacb --full -o /work/runs44/kfacb_rec 2> /work/s44/kfacb_rec.err | tail -2
date
FCACHE=/work/runs44/fisher.pt FMODE=kfac FBEST=1 FLR=0.003 FITERS=600 python /work/s44/fisher_slice_v1.py /work/runs44/kfacc 2> /work/s44/kfacc.err | tail -1
date
andactl eval /work/runs44/kfacb_rec /work/runs44/kfacc --tasks wikitext2 --limit 10 --dtype float32 2>/dev/null
date
