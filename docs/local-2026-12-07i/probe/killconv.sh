#!/bin/bash
# SIGKILL during the first conversion of the default model into an empty model cache, then again
source /work/main/.venv/bin/activate
export ANDACTL_CACHE_DIR=/work/s61/probe/kc-cache ANDACTL_DATA_DIR=/work/shared/data
rm -rf $ANDACTL_CACHE_DIR; mkdir -p $ANDACTL_CACHE_DIR/models
andactl inspect smollm2-135m > kc1.out 2> kc1.err &
pid=$!
for i in $(seq 300); do [ -n "$(ls -A $ANDACTL_CACHE_DIR/models | grep partial)" ] && [ "$(du -sm $ANDACTL_CACHE_DIR/models | cut -f1)" -gt 100 ] && break; sleep 0.1; done
kill -9 $pid; wait $pid 2>/dev/null
echo "after kill:"; ls -a $ANDACTL_CACHE_DIR/models; du -sh $ANDACTL_CACHE_DIR/models
andactl inspect smollm2-135m > kc2.out 2> kc2.err; echo "rc=$?"; grep -i "removing" kc2.err | cut -c1-160
echo "after rerun:"; ls -a $ANDACTL_CACHE_DIR/models; du -sh $ANDACTL_CACHE_DIR/models
