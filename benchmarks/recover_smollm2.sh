#!/usr/bin/env bash
# Recovery on SmolLM2-135M sliced 25%: one variant per call, each step under the shared lock.
#   bash benchmarks/recover_smollm2.sh SLICED_DIR OUT_DIR NAME [andactl recover flags...]
# Writes OUT_DIR/NAME (artifact), NAME.time (GNU time -v: wall, peak RSS), NAME.eval.json
# (WikiText-2 perplexity on the first $WINDOWS windows of 2048 tokens, float32).
set -euo pipefail
SLICED=$1; OUT=$2; NAME=$3; shift 3
WINDOWS=${WINDOWS:-10}
PY=${PY:-/work/main/.venv/bin/python}
LOCK=${LOCK:-/work/heavy.lock}
mkdir -p "$OUT"
echo "$(date -u +%FT%TZ) $(uptime)" > "$OUT/$NAME.load"
/usr/bin/time -v -o "$OUT/$NAME.time" flock "$LOCK" "$PY" -m andactl recover "$SLICED" -o "$OUT/$NAME" --overwrite "$@"
echo "$(date -u +%FT%TZ) $(uptime)" >> "$OUT/$NAME.load"
flock "$LOCK" "$PY" -m andactl eval "$OUT/$NAME" --tasks wikitext2 --limit "$WINDOWS" --format json \
  --output_path "$OUT/$NAME.eval.json" > /dev/null
echo "$(date -u +%FT%TZ) $(uptime)" >> "$OUT/$NAME.load"
grep -E "Elapsed|Maximum resident" "$OUT/$NAME.time"
"$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); print(d)" "$OUT/$NAME.eval.json" | head -c 600
