#!/bin/bash
# bad-input probe: each line a command; print rc, stderr lines, last stderr line
source /work/env.sh; source /work/main/.venv/bin/activate
D=/work/main/runs/demo
run() { echo "### $*"; timeout 300 "$@" >out.txt 2>err.txt; rc=$?; echo "rc=$rc stderr_lines=$(wc -l <err.txt) stdout_lines=$(wc -l <out.txt)"; tail -2 err.txt | cut -c1-300; }
mkdir -p tmpdir; echo hi > afile.txt
printf 'not: [yaml' > bad.yaml
printf -- '- pass: nosuch\n' > unk.yaml
printf -- '- pass: slice\n  ratio: 2\n' > badratio.yaml
printf -- '- {pass: slice, ratio: 0.25, bogus: 1}\n' > badkey.yaml
printf -- 'hello\n' > scalar.yaml
printf '' > empty.yaml
run andactl export $D/packed --to compressed-tensors -o afile.txt
run andactl export $D/sliced --to compressed-tensors -o tmpdir/x
run andactl export /nonexist -o tmpdir/y
run andactl export $D/packed -o $D/packed
run andactl generate $D/packed --prompt ""
run andactl generate $D/packed --prompt hi --device cuda
run andactl generate $D/packed --prompt hi --device tpu
run andactl generate $D/packed --prompt hi --temperature -1
run andactl generate afile.txt --prompt hi
run andactl run bad.yaml --model smollm2-135m -o tmpdir/r1
run andactl run unk.yaml --model smollm2-135m -o tmpdir/r2
run andactl run badratio.yaml --model smollm2-135m -o tmpdir/r3
run andactl run badkey.yaml --model smollm2-135m -o tmpdir/r4
run andactl run scalar.yaml --model smollm2-135m -o tmpdir/r5
run andactl run empty.yaml --model smollm2-135m -o tmpdir/r6
run andactl run unk.yaml -o tmpdir/r7
run andactl run /nonexist.yaml
run andactl run badkey.yaml --model smollm2-135m -o tmpdir/r8 --max-memory 0.001
run andactl bench $D/packed --batch 0
run andactl bench $D/packed --batch a,b
run andactl bench $D/packed --batch ""
run andactl bench $D/packed --prompt-tokens 100000 --gen-tokens 1
run andactl sweep smollm2-135m -o tmpdir/s --ratios 1.5
run andactl sweep smollm2-135m -o tmpdir/s --ratios a
run andactl sweep smollm2-135m -o tmpdir/s --tolerances 0
run andactl sweep smollm2-135m -o tmpdir/s --weight-methods foo
run andactl sweep smollm2-135m -o tmpdir/s --recover foo
run andactl sweep smollm2-135m -o afile.txt
run andactl sweep smollm2-135m -o tmpdir/s --group-size 63
run andactl eval $D/packed --tasks nosuch
run andactl eval $D/packed --tasks ""
run andactl eval $D/packed --tasks wikitext2 --seqlen 100000 --limit 1
run andactl eval $D/packed --tasks wikitext2 --data-dir tmpdir --limit 1
run andactl eval $D/packed --tasks wikitext2 --limit 1 --output-path tmpdir
run andactl eval $D/packed --tasks wikitext2 --limit 1 --output-path /nonexist/dir/x.json
run andactl inspect afile.txt
run andactl inspect tmpdir
run andactl kernels build --help
run andactl quantize $D/packed -o tmpdir/q
run andactl slice $D/packed --ratio 0.25 -o tmpdir/sl
run andactl recover $D/packed -o tmpdir/rc
run andactl prune $D/sliced --ratio 0.2 -o tmpdir/pr
run andactl slice smollm2-135m --ratio 0.25 -o tmpdir/sl2 --cal-data wikitext2
run andactl recover $D/sliced --train-data piqa -o tmpdir/rc2
ls tmpdir
