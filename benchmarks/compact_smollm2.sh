#!/bin/bash
# Issue 10 (second round) measurements on SmolLM2-135M: compact bytes and the KL search loss.
# Run under the shared lock:  flock /work/heavy.lock benchmarks/compact_smollm2.sh OUT_DIR SLICED25 TABLE_GROUP [steps...]
# SLICED25: a 25%-sliced float artifact (andactl slice smollm2-135m --ratio 0.25 --cal-data alpaca
# --cal-samples 8 --cal-seqlen 2048). Steps: bytes (dense + sliced artifacts), search (kl and ppl).
export TOKENIZERS_PARALLELISM=false
PY=${PY:-python}
R=$1; S=$2; G=$3; shift 3
mkdir -p "$R"
CAL="--cal-data alpaca --cal-samples 8 --cal-seqlen 512"
step() { local name=$1; shift; echo "$name start $(date -u +%T) $(uptime)" >> "$R/log"
         /usr/bin/time -f "%e s wall %M KB" "$@" > "$R/$name.out" 2> "$R/$name.err"
         echo "$name rc $? end $(date -u +%T) $(uptime)" >> "$R/log"; }
for what in "$@"; do case $what in
  bytes)
    step w4a16 $PY -m andactl quantize smollm2-135m --activations none --weight-method rtn $CAL -o "$R/dense_w4a16" --format json
    step w4anda_t4 $PY -m andactl quantize smollm2-135m --bits 7 5 7 7 --weight-method rtn --head int4 --embeddings int4 \
         --table-group "$G" $CAL -o "$R/dense_w4anda_t4" --format json
    step s25_compact $PY -m andactl quantize "$S" --bits 7 8 9 7 --weight-method gptq --head int4 --embeddings int4 \
         --table-group "$G" --shortcuts int8 $CAL -o "$R/s25_w4anda_compact" --format json
    for a in dense_w4a16 dense_w4anda_t4 s25_w4anda_compact; do
      $PY -m andactl inspect "$R/$a" --format json > "$R/$a.inspect.json" 2>/dev/null; done
    step eval_bytes $PY -m andactl eval "$R/dense_w4a16" "$R/dense_w4anda_t4" "$R/s25_w4anda_compact" --tasks wikitext2 \
         --limit 8 --dtype float32 --format json ;;
  s25only)
    step s25_compact $PY -m andactl quantize "$S" --bits 7 8 9 7 --weight-method gptq --head int4 --embeddings int4 \
         --table-group "$G" --shortcuts int8 $CAL -o "$R/s25_w4anda_compact" --format json --overwrite ;;
  search_kl)
    step search_kl $PY -m andactl quantize smollm2-135m --tolerance 0.01 --search-loss kl --weight-method rtn $CAL \
         -o "$R/dense_kl1" --format json
    step eval_kl $PY -m andactl eval "$R/dense_kl1" --tasks wikitext2 --limit 8 --dtype float32 --format json ;;
  search_ppl)
    step search_ppl $PY -m andactl quantize smollm2-135m --tolerance 0.01 --search-loss ppl --weight-method rtn $CAL \
         -o "$R/dense_ppl1" --format json
    step eval_ppl $PY -m andactl eval "$R/dense_ppl1" --tasks wikitext2 --limit 8 --dtype float32 --format json ;;
esac; done
echo "done $*" >> "$R/log"
