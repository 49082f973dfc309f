#!/bin/bash
# new-area probe (stop 61): symlinks, odd paths, tampered artifacts, concurrency, env, source = output
source /work/env.sh; source /work/main/.venv/bin/activate
cd /work/s61/probe
run() { echo "### $*"; timeout 300 "$@" >out.txt 2>err.txt; rc=$?; echo "rc=$rc stderr_lines=$(wc -l <err.txt) stdout_lines=$(wc -l <out.txt)"; tail -2 err.txt | cut -c1-300; }
rm -rf w; mkdir -p w; cd w
python ../mk_tiny.py
run andactl prune tiny --ratio 0.25 --cal-seqlen 128 --cal-samples 4 -o art
# symlinks
ln -s art link_art; mkdir user; echo precious > user/notes.txt; ln -s user link_user; ln -s nowhere dangling
run andactl prune tiny --ratio 0.25 --cal-seqlen 128 --cal-samples 4 -o link_art --overwrite; ls -la link_art art | head -5
run andactl prune tiny --ratio 0.25 --cal-seqlen 128 --cal-samples 4 -o link_user --overwrite; cat user/notes.txt
run andactl prune tiny --ratio 0.25 --cal-seqlen 128 --cal-samples 4 -o dangling; ls -la dangling nowhere 2>&1 | head
# odd paths
run andactl prune tiny --ratio 0.25 --cal-seqlen 128 --cal-samples 4 -o "my out/ü d"; ls "my out"
run andactl eval "my out/ü d" --tasks wikitext2 --limit 1 --seqlen 128
# tampered artifacts
for f in model.safetensors tokenizer.json report.json recipe.yaml; do rm -rf t; cp -r art t; rm -f t/$f; run andactl eval t --tasks wikitext2 --limit 1 --seqlen 128; run andactl inspect t; done
rm -rf t; cp -r art t; python -c "import json;c=json.load(open('t/config.json'));c['andactl']={};json.dump(c,open('t/config.json','w'))"; run andactl inspect t
rm -rf t; cp -r art t; python -c "import json;c=json.load(open('t/config.json'));c['hidden_size']=7;json.dump(c,open('t/config.json','w'))"; run andactl inspect t; run andactl eval t --tasks wikitext2 --limit 1 --seqlen 128
# source = output, output inside source
run andactl prune art --ratio 0.1 --cal-seqlen 128 --cal-samples 4 -o art --overwrite; run andactl inspect art
run andactl prune art --ratio 0.1 --cal-seqlen 128 --cal-samples 4 -o art/inner; ls art
# concurrency: two writers to one new path
rm -rf conc; (andactl prune tiny --ratio 0.25 --cal-seqlen 128 --cal-samples 4 -o conc > c1.out 2> c1.err; echo "rc1=$?" >> c1.err) & (andactl prune tiny --ratio 0.5 --cal-seqlen 128 --cal-samples 4 -o conc > c2.out 2> c2.err; echo "rc2=$?" >> c2.err) & wait; tail -n 2 c1.err c2.err; ls -a .
# env
ANDACTL_CACHE_DIR=/work/s61/probe/w/user/notes.txt run andactl eval smollm2-135m --tasks wikitext2 --limit 1 --seqlen 128
OMP_NUM_THREADS=abc run andactl eval tiny --tasks wikitext2 --limit 1 --seqlen 128
run andactl bench tiny --threads 0
run andactl export art --to compressed-tensors -o art/exp
