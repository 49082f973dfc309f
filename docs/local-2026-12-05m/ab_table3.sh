#!/bin/bash
# A/B of the table kernels' tail steps, 3 pairs in alternating order: HEAD's kernels/csrc (base) vs the working tree (tail).
cd /work/main
run() {  # $1 = base|tail, $2 = run index
  if [ "$1" = base ]; then git stash push -q -- kernels/csrc; fi
  andactl kernels build >/dev/null 2>&1
  python /work/s42/table_tail.py 2>&1 | grep -v INFO > /work/s42/ab3_$1_$2.txt
  if [ "$1" = base ]; then git stash pop -q; fi
}
run base 1; run tail 1; run tail 2; run base 2; run base 3; run tail 3
