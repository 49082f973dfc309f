#!/bin/bash
# Random OPT-125m shape (benchmarks/random_models.py opt-125m): slice 25% -> quantize -> inspect -> eval (runs end to end).
set -e
cd /work/main && source /work/env.sh && source .venv/bin/activate
M=/work/s41/opt-125m; O=/work/s41/cli
rm -rf $O && mkdir -p $O
/usr/bin/time -f "slice %e s %M KB" andactl slice $M --ratio 0.25 --cal-samples 16 --cal-seqlen 1024 -o $O/sliced 2> $O/slice.err
/usr/bin/time -f "quantize %e s %M KB" andactl quantize $O/sliced --bits 8 7 8 8 -o $O/q 2> $O/q.err
/usr/bin/time -f "quantize %e s %M KB" andactl quantize $M --bits 8 7 8 8 -o $O/q_dense 2> $O/qd.err
for a in $M $O/sliced $O/q $O/q_dense; do andactl inspect $a --format json > $O/$(basename $a).inspect.json 2>/dev/null; done
andactl eval $M $O/sliced $O/q --tasks wikitext2 --limit 2 --dtype float32 --format json > $O/ppl.json 2> $O/eval.err
for f in slice q qd; do tail -n1 $O/$f.err; done
python - <<'PY'
import json
O='/work/s41/cli'
for n in ("opt-125m","sliced","q","q_dense"):
    d=json.load(open(f"{O}/{n}.inspect.json"))
    print(n, d.get("parameters"), d.get("one_table"), (d.get("storage") or {}).get("total_bytes"), (d.get("storage") or {}).get("by_category"))
print(open(f"{O}/ppl.json").read()[:800])
PY
