#!/bin/bash
cd /work/main && source /work/env.sh
P=/work/main/.venv/bin/python
for v in "shortcuts,norms" "shortcuts,norms,head,embed"; do
  d=/work/s36/w_$(echo $v | tr , _)
  /usr/bin/time -v env WIDE=$v $P /work/s36/wide.py recover /work/runs/chain/sliced --full -o $d --overwrite > $d.out 2> $d.err
  grep -E 'wide:|Elapsed|Maximum resident' $d.err
  grep -o '"held_out_after": [0-9.]*' $d.out
done
