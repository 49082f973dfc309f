#!/bin/bash
# The whole chain on the best-perplexity recovered model (stop 32: PCA on self-generated text, then
# recover --full --steps 200): quantize at its defaults, then WikiText-2 (10 windows, full test set)
# and zero-shot (first 500 documents), float32. One job at a time.
cd /work/main && source /work/env.sh && source .venv/bin/activate
O=docs/local-2026-12-05d
R=/work/runs/r33
/usr/bin/time -v python -m andactl quantize /work/runs/r32/selfcal_full200 -o $R/selfcal200_q1 --overwrite > $O/selfcal_chain_quantize.out 2> $O/selfcal_chain_quantize.err
python -m andactl eval $R/selfcal200_q1 --tasks wikitext2 --limit 10 --dtype float32 > $O/selfcal_chain_eval10.out 2> $O/selfcal_chain_eval10.err
/usr/bin/time -v python -m andactl eval $R/selfcal200_q1 --tasks wikitext2 --dtype float32 > $O/selfcal_chain_evalfull.out 2> $O/selfcal_chain_evalfull.err
python -m andactl eval $R/selfcal200_q1 --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 > $O/selfcal_chain_zs.out 2> $O/selfcal_chain_zs.err
python -m andactl inspect $R/selfcal200_q1 > $O/selfcal_chain_inspect.out 2>&1
