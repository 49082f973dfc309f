#!/usr/bin/env bash
# Short A/B runs of `andactl recover` on one sliced artifact, same tokens for every variant
# (12 steps x 2 x 256 alpaca tokens, the same 4 held-out sequences), each under the shared lock.
#   bash benchmarks/recover_ab.sh SLICED_DIR OUT_DIR [NAME ...]
# Prints per variant: wall, peak RSS, tokens/s, held-out loss before -> after (nats/token).
set -euo pipefail
SLICED=$1; OUT=$2; shift 2
PY=${PY:-/work/main/.venv/bin/python}
LOCK=${LOCK:-/work/heavy.lock}
COMMON=(--steps "${STEPS:-12}" --batch-size 2 --seqlen 256 --held-out 4 --eval-every 1000)
declare -A VARIANT=(
  [lora_1e-3]="--lr 1e-3"
  [lora_5e-3]="--lr 5e-3"
  [full_1e-4]="--full --lr 1e-4"
  [full_3e-4]="--full --lr 3e-4"
  [lora_1e-3_nockpt]="--lr 1e-3 --no-checkpoint"
  [self_lora_1e-3]="--train-data self --lr 1e-3"
  [self_full_1e-4]="--train-data self --full --lr 1e-4"
)
NAMES=("$@"); [ ${#NAMES[@]} -gt 0 ] || NAMES=(lora_1e-3 lora_5e-3 full_1e-4 full_3e-4 lora_1e-3_nockpt)
mkdir -p "$OUT"
for NAME in "${NAMES[@]}"; do
  # shellcheck disable=SC2086
  flock "$LOCK" bash -c 'echo "start $(date -u +%FT%TZ) $(uptime)" > "$0/$1.load"
    /usr/bin/time -v -o "$0/$1.time" "$2" -m andactl -q recover "$3" -o "$0/$1" --overwrite "${@:4}" > /dev/null
    echo "end $(date -u +%FT%TZ) $(uptime)" >> "$0/$1.load"' "$OUT" "$NAME" "$PY" "$SLICED" "${COMMON[@]}" ${VARIANT[$NAME]}
  "$PY" - "$OUT" "$NAME" <<'PY'
import json, re, sys
out, name = sys.argv[1:]
t = open(f"{out}/{name}.time").read()
wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", t).group(1)
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1024**2
r = [p for p in json.load(open(f"{out}/{name}/report.json"))["passes"] if p["pass"] == "recover"][0]["result"]
h = r["history"]
print(f"{name}: wall {wall}, peak RSS {rss:.2f} GiB, train {h['seconds']} s at {h['tokens_per_second']} tok/s, "
      f"held-out {r['held_out_before']:.4f} -> {r['held_out_after']:.4f}")
PY
done
