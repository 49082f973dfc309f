set -x
R=/work/runs43
cd /work/main && source /work/env.sh && source .venv/bin/activate
for r in 0.25 0.5; do
  /usr/bin/time -f "%e s %M KB" andactl prune smollm2-135m --ratio $r -o $R/prune$r 2>&1 | tail -2
  /usr/bin/time -f "%e s %M KB" andactl recover $R/prune$r --full -o $R/prune${r}_rec 2>&1 | tail -2
done
andactl eval $R/prune0.25 $R/prune0.25_rec $R/prune0.5 $R/prune0.5_rec --tasks wikitext2 --limit 10 --dtype float32 --format json > $R/ratios_ppl.json 2> $R/ratios_ppl.err
python -c "import json; [print(m['model'], m['results']['wikitext2']['ppl']) for m in json.load(open('$R/ratios_ppl.json'))['models']]"
andactl eval $R/prune0.25_rec $R/prune0.5_rec --tasks piqa,arc_easy,hellaswag --limit 500 --batch-size 16 --dtype float32 --format json > $R/ratios_zs.json 2> $R/ratios_zs.err
python -c "
import json
for m in json.load(open('$R/ratios_zs.json'))['models']:
    a=[m['results'][t]['acc'] for t in ('piqa','arc_easy','hellaswag')]; print(m['model'], a, sum(a)/3)"
andactl prune smollm2-135m --ratio 0.2 -o $R/prune20_again 2>&1 | tail -1
sha256sum $R/prune20/model.safetensors $R/prune20_again/model.safetensors
echo DONE
