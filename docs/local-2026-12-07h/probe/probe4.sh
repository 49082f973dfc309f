#!/bin/bash
source /work/env.sh; source /work/main/.venv/bin/activate
D=/work/main/runs/demo
run() { echo "### $*"; local t0=$(date +%s.%N); timeout 300 "$@" >out.txt 2>err.txt; rc=$?; echo "rc=$rc t=$(echo "$(date +%s.%N)-$t0"|bc|cut -c1-5)s stderr_lines=$(wc -l <err.txt) stdout_lines=$(wc -l <out.txt)"; tail -2 err.txt | cut -c1-300; tail -1 out.txt | cut -c1-200; }
rm -rf tmpdir; mkdir -p tmpdir
run andactl prune $D/pruned --ratio 0.2 -o tmpdir/a --dry-run
run andactl slice $D/pruned --ratio 0.25 -o tmpdir/a --dry-run
run andactl slice $D/recovered --ratio 0.25 -o tmpdir/a --dry-run
run andactl recover $D/pruned_recovered -o tmpdir/a --dry-run
run andactl recover $D/quantized -o tmpdir/a --dry-run
run andactl prune $D/quantized --ratio 0.2 -o tmpdir/a --dry-run
run andactl quantize $D/recovered -o tmpdir/a --dry-run
run andactl recover smollm2-135m -o tmpdir/a --dry-run
run andactl recover smollm2-135m --method lora -o tmpdir/a --dry-run
run andactl export $D/pruned_packed --to compressed-tensors -o tmpdir/ct
run andactl inspect $D/pruned_packed --format json
run andactl sweep $D/pruned -o tmpdir/sw --ratios 0 --dry-run
ls tmpdir
