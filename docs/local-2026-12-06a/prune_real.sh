set -x
R=/work/runs43
cd /work/main && source /work/env.sh && source .venv/bin/activate
/usr/bin/time -f "%e s %M KB" andactl prune smollm2-135m --ratio 0.2 -o $R/prune20 2>&1 | tail -4
/usr/bin/time -f "%e s %M KB" andactl recover $R/prune20 --full -o $R/prune20_rec 2>&1 | tail -3
andactl eval smollm2-135m $R/prune20 $R/prune20_rec --tasks wikitext2 --limit 10 --dtype float32 --format json > $R/prune_ppl.json 2> $R/prune_ppl.err
python -c "import json; [print(m['model'], m['results']['wikitext2']['ppl']) for m in json.load(open('$R/prune_ppl.json'))['models']]"
