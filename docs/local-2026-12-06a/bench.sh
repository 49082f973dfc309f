set -x
R=/work/runs43
cd /work/main && source /work/env.sh && source .venv/bin/activate
for i in 1 2; do
  andactl bench smollm2-135m /work/runs39/q1_1 $R/prune20_q --prompt-tokens 128 --gen-tokens 32 --batch 1,4 --threads 1 --format json > $R/bench$i.json 2> $R/bench$i.err
  python - <<PY
import json
d=json.load(open("$R/bench$i.json"))
print(json.dumps(d)[:200])
PY
done
echo DONE
