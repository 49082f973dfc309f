#!/bin/bash
# a sweep killed (SIGKILL) while a point's partial folder exists, then the same command again
source /work/env.sh; source /work/main/.venv/bin/activate
cd /work/s61/probe/w; rm -rf sw sw1.*
ANDACTL_PAUSE_AT=partial_created ANDACTL_PAUSE_SECONDS=30 andactl sweep tiny -o sw --ratios 0,0.1 --seqlen 64 --cal-seqlen 64 --cal-samples 4 > sw1.out 2> sw1.err &
pid=$!
for i in $(seq 150); do grep -q "paused at" sw1.err && break; sleep 0.2; done
kill -9 $pid; wait $pid 2>/dev/null; echo "killed"
find sw -maxdepth 3 | sort | head -30
s=$(date +%s); andactl sweep tiny -o sw --ratios 0,0.1 --seqlen 64 --cal-seqlen 64 --cal-samples 4 > sw2.out 2> sw2.err; echo "rc=$? $(( $(date +%s) - s )) s"
grep -v "^INFO.*dataset" sw2.err | head -8 | cut -c1-200
find sw -maxdepth 2 -name ".*" | head; ls sw/artifacts
