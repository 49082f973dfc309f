#!/bin/bash
cd /work/main && source /work/env.sh
d=/work/s36/w_head_embed
/usr/bin/time -v env WIDE=head,embed /work/main/.venv/bin/python /work/s36/wide.py recover /work/runs/chain/sliced --full -o $d --overwrite > $d.out 2> $d.err
grep -E 'wide:|Elapsed|Maximum resident' $d.err; grep -o 'held_out_after[^,]*' $d/report.json
