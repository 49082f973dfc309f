#!/bin/bash
# Random OPT-125m shape with an UNTIED head, sliced at 21% (width 600 = 8 mod 16 with --round-to 8), packed.
set -e
cd /work/main && source /work/env.sh && source .venv/bin/activate
W=/work/s42/untied
python - <<'PY'
import sys; sys.path.insert(0, 'benchmarks')
from pathlib import Path
from random_models import config_of, write_model
print(write_model("opt-125m-untied", Path("/work/s42/untied"), config_of("opt-125m", tie_word_embeddings=False)))
PY
andactl slice $W/opt-125m-untied --ratio 0.21 --cal-samples 16 --cal-seqlen 1024 -o $W/sliced 2> $W/slice.err
andactl quantize $W/sliced --bits 8 7 8 8 --weight-method rtn -o $W/q 2> $W/q.err
andactl inspect $W/q --format json > $W/q.inspect.json 2>/dev/null
python -c "
import json; d=json.load(open('$W/q.inspect.json')); print({k: d.get(k) for k in ('parameters','one_table')})"
