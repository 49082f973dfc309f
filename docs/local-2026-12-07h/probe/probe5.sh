#!/bin/bash
source /work/env.sh; source /work/main/.venv/bin/activate
D=/work/main/runs/demo
run() { echo "### $*"; local t0=$(date +%s.%N); timeout 300 "$@" >out.txt 2>err.txt; rc=$?; echo "rc=$rc t=$(echo "$(date +%s.%N)-$t0"|bc|cut -c1-5)s stderr_lines=$(wc -l <err.txt) stdout_lines=$(wc -l <out.txt)"; tail -2 err.txt | cut -c1-300; tail -1 out.txt | cut -c1-200; }
rm -rf tmpdir; mkdir -p tmpdir "sp ace"
run andactl quantize smollm2-135m --activations none --weight-method rtn -o "sp ace/w4a16"
run andactl export "sp ace/w4a16" --to compressed-tensors -o "sp ace/ct"
run andactl export "sp ace/w4a16" --to compressed-tensors -o "sp ace/ct"
run andactl export "sp ace/w4a16" --to compressed-tensors -o "sp ace/w4a16" --overwrite
run andactl eval "sp ace/ct" --tasks wikitext2 --limit 1
run andactl inspect "sp ace/ct"
run andactl generate $D/packed --prompt "$(python -c 'print("word "*9000)')" --max-new-tokens 2
run andactl generate $D/packed --prompt hi --max-new-tokens 2 --temperature 0.7 --seed -1
run andactl eval $D/packed --tasks wikitext2,wikitext2,wikitext --limit 1
run andactl eval $D/packed $D/packed --tasks wikitext2 --limit 1
run andactl bench $D/packed $D/packed --batch 1 --prompt-tokens 8 --gen-tokens 2 --repeat 1
ls "sp ace"
