#!/bin/bash
# numeric edge values (nan, inf, huge, negative) and misc (stop 61)
source /work/env.sh; source /work/main/.venv/bin/activate
cd /work/s61/probe/w
run() { echo "### $*"; timeout 300 "$@" >out.txt 2>err.txt; rc=$?; echo "rc=$rc stderr_lines=$(wc -l <err.txt) stdout_lines=$(wc -l <out.txt) ls_o=$(ls -d o 2>/dev/null)"; tail -2 err.txt | cut -c1-300; rm -rf o; }
C="--cal-seqlen 128 --cal-samples 4"
run andactl slice tiny --ratio nan $C -o o
run andactl slice tiny --ratio inf $C -o o
run andactl slice tiny --ratio -0.0 $C -o o
run andactl prune tiny --ratio nan $C -o o
run andactl slice tiny --ratio 0.25 --cal-samples 0 --cal-seqlen 128 -o o
run andactl slice tiny --ratio 0.25 --cal-samples 4 --cal-seqlen 0 -o o
run andactl slice tiny --ratio 0.25 $C --seed -1 -o o
run andactl slice tiny --ratio 0.25 $C --seed 99999999999999999999 -o o
run andactl recover art --lr nan --steps 1 --seqlen 64 -o o
run andactl recover art --lr inf --steps 1 --seqlen 64 -o o
run andactl recover art --lr 1e9 --steps 2 --seqlen 64 --full -o o
run andactl recover art --minutes nan -o o
run andactl recover art --minutes inf --seqlen 64 -o o
run andactl recover art --ce-weight nan --steps 1 --seqlen 64 -o o
run andactl recover art --ce-weight -1 --steps 1 --seqlen 64 -o o
run andactl recover art --warmup 2 --steps 1 --seqlen 64 -o o
run andactl quantize art --tolerance nan $C -o o
run andactl quantize art --tolerance inf $C -o o
run andactl quantize art --tolerance -1 $C -o o
run andactl eval art --tasks wikitext2 --limit 0 --seqlen 64
run andactl eval art --tasks wikitext2 --seqlen 0
run andactl eval art --tasks wikitext2 --seqlen 64 --batch-size 0
run andactl eval art --tasks "wikitext2,,wikitext2" --seqlen 64 --limit 1
run andactl eval art --tasks " " --seqlen 64
run andactl generate art --prompt hi --max-new-tokens 0
run andactl generate art --prompt hi --max-new-tokens 100000
run andactl generate art --prompt "$(head -c 2000 /work/shared/data/wikitext2/wiki.test.raw)" --max-new-tokens 4
run andactl generate art --prompt hi --top-p 2
run andactl generate art --prompt hi --temperature nan
run andactl bench art --prompt-tokens 0
run andactl bench art --gen-tokens 0
run andactl bench art --repeat 0
run andactl inspect art --json
run andactl recover art --help
