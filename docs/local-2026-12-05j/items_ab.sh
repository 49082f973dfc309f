#!/bin/bash
# GEMV work items: main (4..16 blocks, 4 per thread) vs 4..64 blocks, 2 per thread; alternating, 1 and 2 threads.
cd /work/main && source /work/env.sh
PYTHONPATH=/work/s39/items flock /work/heavy.lock .venv/bin/python -c "from andactl.kernels import build; print(build.load())" > /work/s39/items_build.txt 2>&1
for i in 1 2; do
  for v in main items; do
    if [ $v = main ]; then pp=/work/main; else pp=/work/s39/items; fi
    echo "== $v $i"; PYTHONPATH=$pp flock /work/heavy.lock .venv/bin/python /work/s39/gemv_over.py 2>&1 | grep 'N  11008\|N   1024'
  done
done
