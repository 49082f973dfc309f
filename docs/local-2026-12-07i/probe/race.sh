#!/bin/bash
# two commands at once on the default model with an empty model cache
source /work/main/.venv/bin/activate
export ANDACTL_CACHE_DIR=/work/s61/probe/race-cache ANDACTL_DATA_DIR=/work/shared/data
rm -rf $ANDACTL_CACHE_DIR
cd /work/s61/probe/w
(andactl inspect smollm2-135m > r1.out 2> r1.err; echo "rc1=$?" >> r1.err) &
(andactl inspect smollm2-135m > r2.out 2> r2.err; echo "rc2=$?" >> r2.err) &
wait
tail -n 2 r1.err r2.err; head -1 r1.out r2.out; ls -a $ANDACTL_CACHE_DIR/models
