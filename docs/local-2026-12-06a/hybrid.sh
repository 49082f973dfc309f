set -x
R=/work/runs43
cd /work/main && source /work/env.sh && source .venv/bin/activate
for r in 0.10 0.15; do
  /usr/bin/time -f "%e s %M KB" andactl recover $R/p$r --full -o $R/rp$r 2>&1 | tail -3
done
andactl eval $R/p0.10 $R/p0.15 $R/rp0.10 $R/rp0.15 /work/runs40/sliced /work/runs40/rec --tasks wikitext2 --limit 10 --dtype float32 --format json > $R/ppl.json 2> $R/ppl.err
cat $R/ppl.json | python -c "import json,sys; d=json.load(sys.stdin); print(json.dumps(d)[:3000])"
