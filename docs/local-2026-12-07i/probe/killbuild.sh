#!/bin/bash
# SIGKILL during the first build of the C++ extension, then the next command
source /work/main/.venv/bin/activate
export ANDACTL_CACHE_DIR=/work/s61/probe/kb-cache
rm -rf $ANDACTL_CACHE_DIR
andactl kernels build > kb1.out 2>&1 &
pid=$!
sleep 15; pkill -9 -P $pid; kill -9 $pid; sleep 1; pkill -9 -f "ninja|cc1plus" ; sleep 1
find $ANDACTL_CACHE_DIR -maxdepth 2 -name lock
s=$(date +%s); timeout 120 andactl kernels info > kb2.out 2>&1; echo "rc=$? after $(( $(date +%s) - s )) s"; tail -3 kb2.out
