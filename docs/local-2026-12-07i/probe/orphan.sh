#!/bin/bash
# SIGTERM to andactl (as `timeout` sends it) while its --minutes step-timing child runs
source /work/env.sh; source /work/main/.venv/bin/activate
cd /work/s61/probe/w
andactl recover /work/main/runs/demo/sliced --full --minutes 5 -o orph > or.out 2> or.err &
pid=$!
s=$(date +%s); for i in $(seq 600); do pgrep -P $pid > /dev/null && grep -q "timing" or.err && break; sleep 0.1; done; echo "waited $(( $(date +%s) - s )) s"
sleep 3; echo "children: $(pgrep -P $pid | tr '\n' ' ')"; kids=$(pgrep -P $pid)
kill -TERM $pid; wait $pid; echo "rc=$?"; tail -2 or.err
sleep 2; for k in $kids; do ps -o pid,etime,cmd -p $k | tail -n +2 | cut -c1-100; done; echo "(no line above: no child left)"
ls -d orph 2>&1
