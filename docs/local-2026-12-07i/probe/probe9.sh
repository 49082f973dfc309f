#!/bin/bash
# stop 61, third round: budgets, sweeps killed and resumed, recipe output precedence
source /work/env.sh; source /work/main/.venv/bin/activate
cd /work/s61/probe/w
run() { echo "### $*"; s=$(date +%s); timeout 300 "$@" >out.txt 2>err.txt; rc=$?; echo "rc=$rc $(( $(date +%s) - s ))s stderr_lines=$(wc -l <err.txt) stdout_lines=$(wc -l <out.txt)"; tail -2 err.txt | cut -c1-300; }
run andactl recover art --minutes 0.01 --seqlen 64 -o o; rm -rf o
run andactl recover art --minutes 0.3 --seqlen 64 -o o; rm -rf o
mkdir -p notsweep; echo x > notsweep/f
run andactl sweep tiny -o notsweep --ratios 0.1 --seqlen 64 --cal-seqlen 64
printf -- 'output: from_yaml\npasses:\n- pass: fuse_norms\n' > r.yaml
run andactl run r.yaml --model tiny -o from_cli; ls -d from_yaml from_cli 2>&1; rm -rf from_yaml from_cli
run andactl run r.yaml --model tiny; ls -d from_yaml 2>&1; rm -rf from_yaml
# sweep killed mid-point, then resumed
rm -rf sw
timeout -s KILL 25 andactl sweep tiny -o sw --ratios 0,0.1 --seqlen 64 --cal-seqlen 64 --cal-samples 4 > sw1.out 2> sw1.err; echo "killed rc=$?"; ls -a sw sw/* 2>&1 | head -20
run andactl sweep tiny -o sw --ratios 0,0.1 --seqlen 64 --cal-seqlen 64 --cal-samples 4; ls -a sw | head; grep -i "remov\|resum\|skip" err.txt | head -5
