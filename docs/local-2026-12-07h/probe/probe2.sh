#!/bin/bash
source /work/env.sh; source /work/main/.venv/bin/activate
D=/work/main/runs/demo
run() { echo "### $*"; local t0=$(date +%s.%N); timeout 300 "$@" >out.txt 2>err.txt; rc=$?; echo "rc=$rc t=$(echo "$(date +%s.%N)-$t0"|bc|cut -c1-5)s stderr_lines=$(wc -l <err.txt) stdout_lines=$(wc -l <out.txt)"; tail -2 err.txt | cut -c1-300; }
rm -rf tmpdir; mkdir -p tmpdir
run andactl recover $D/sliced --steps 0 -o tmpdir/a
run andactl recover $D/sliced --lr -1 -o tmpdir/a
run andactl recover $D/sliced --seqlen 100000 -o tmpdir/a
run andactl recover $D/sliced --batch-size 0 -o tmpdir/a
run andactl recover $D/sliced --method foo -o tmpdir/a
run andactl recover $D/sliced --train-data wikitext2 -o tmpdir/a
run andactl recover $D/sliced --train-data nosuch -o tmpdir/a
run andactl recover $D/sliced --teacher $D/sliced -o tmpdir/a --steps 1
run andactl prune smollm2-135m --ratio 1 -o tmpdir/a
run andactl prune smollm2-135m --ratio 0 -o tmpdir/a
run andactl prune smollm2-135m --ratio -0.1 -o tmpdir/a
run andactl slice smollm2-135m --ratio 1 -o tmpdir/a
run andactl slice smollm2-135m --ratio 0.999 -o tmpdir/a --cal-samples 1 --cal-seqlen 16
run andactl quantize smollm2-135m --bits 1 2 3 4 -o tmpdir/a
run andactl quantize smollm2-135m --bits 20 8 8 8 -o tmpdir/a
run andactl quantize smollm2-135m --tolerance 2 -o tmpdir/a
run andactl quantize smollm2-135m --group-size 100 -o tmpdir/a
run andactl quantize smollm2-135m --cal-samples 0 -o tmpdir/a
run andactl eval $D/packed /nonexist --tasks wikitext2 --limit 1
run andactl eval $D/packed --tasks wikitext2 --limit 0
run andactl eval $D/packed --tasks piqa --limit 2 --batch-size 0
run andactl eval $D/packed --tasks wikitext2 --seqlen 7 --limit 1
run andactl inspect $D/packed --format xml
run andactl export $D/quantized --to compressed-tensors -o $D/packed --overwrite
run andactl export $D/quantized --to compressed-tensors -o tmpdir/ct
run andactl export tmpdir/ct --to compressed-tensors -o tmpdir/ct2
run andactl generate tmpdir/ct --prompt "The capital of France is" --max-new-tokens 4
run andactl bench $D/packed /nonexist
run andactl bench $D/packed --threads 0
run andactl generate $D/packed --prompt hi --chat --max-new-tokens 2
run andactl env --format xml
run andactl passes --format json
ls tmpdir
