#!/bin/bash
# two writers to one new -o: A pauses before its swap, B finishes first
source /work/env.sh; source /work/main/.venv/bin/activate
cd /work/s61/probe/w; rm -rf conc a.* b.*
(ANDACTL_PAUSE_AT=before_swap ANDACTL_PAUSE_SECONDS=8 andactl prune tiny --ratio 0.25 --cal-seqlen 128 --cal-samples 4 -o conc > a.out 2> a.err; echo "rcA=$?" >> a.err) &
sleep 1
andactl prune tiny --ratio 0.25 --cal-seqlen 128 --cal-samples 8 -o conc > b.out 2>b.err; echo "rcB=$?"; tail -n 2 b.err
grep -o "samples: [0-9]*" conc/recipe.yaml
wait; tail -n 3 a.err; grep -o "samples: [0-9]*" conc/recipe.yaml; ls -a | grep conc
