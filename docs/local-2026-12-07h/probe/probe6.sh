#!/bin/bash
source /work/env.sh; source /work/main/.venv/bin/activate
D=/work/main/runs/demo
run() { echo "### $*"; local t0=$(date +%s.%N); timeout 300 "$@" >out.txt 2>err.txt; rc=$?; echo "rc=$rc t=$(echo "$(date +%s.%N)-$t0"|bc|cut -c1-5)s stderr_lines=$(wc -l <err.txt) stdout_lines=$(wc -l <out.txt)"; tail -2 err.txt | cut -c1-300; }
rm -rf tmpdir; mkdir -p tmpdir
for a in "--teacher-topk 0" "--held-out 0" "--eval-every 0" "--warmup -1" "--grad-accum 0" "--schedule foo" "--ce-weight -1" "--teacher-topk 100000" "--held-out 100000" "--warmup 1000" "--seqlen 4"; do
  run andactl recover $D/sliced $a -o tmpdir/r --dry-run
done
for a in "--table-group 0" "--head int3" "--table-method gptq --head none" "--tolerance 0" "--max-evals 0" "--group-size 0" "--group-size -1 --bits 8 8 8 8" "--storage-dtype int8"; do
  run andactl quantize smollm2-135m $a -o tmpdir/q --dry-run
done
for a in "--round-to 0" "--round-to 1000" "--round-to 7" "--basis fisher --stream"; do
  run andactl slice smollm2-135m --ratio 0.25 $a -o tmpdir/s --dry-run
done
run andactl prune smollm2-135m --ratio 0.2 --cal-samples 1 --cal-seqlen 8 -o tmpdir/p --dry-run
ls tmpdir
