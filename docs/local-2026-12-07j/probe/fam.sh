#!/bin/bash
# every family through the CLI chain on tiny random models
cd /work/s62/p
source /work/env.sh; source /work/main/.venv/bin/activate
CAL="--cal-samples 4 --cal-seqlen 128"
for F in llama mistral qwen2 qwen3 smollm3 phi phi3 opt; do
  python - $F <<'PY'
import sys; sys.path.insert(0, "/work/main/tests")
from tiny_models import tiny_model
from tiny_tokenizer import char_tokenizer
m,_ = tiny_model(sys.argv[1]); m.save_pretrained("f_"+sys.argv[1]); char_tokenizer().save_pretrained("f_"+sys.argv[1])
PY
  D=f_$F; rm -rf $D.*
  run() { out=$("$@" 2>&1); rc=$?; [ $rc -ne 0 ] && echo "[$F] FAIL rc=$rc: $*" && echo "$out" | tail -3; }
  run andactl -q slice $D --ratio 0.25 $CAL -o $D.s
  run andactl -q recover $D.s --full --steps 3 --seqlen 64 --batch-size 2 --held-out 2 -o $D.r
  run andactl -q recover $D.s --steps 3 --seqlen 64 --batch-size 2 --held-out 2 --method lora -o $D.l
  run andactl -q quantize $D.r $CAL --max-evals 3 -o $D.q
  run andactl -q quantize $D $CAL --bits 8 8 8 8 -o $D.u
  run andactl -q prune $D --ratio 0.2 $CAL -o $D.p
  run andactl -q eval $D $D.s $D.r $D.q $D.u $D.p --tasks wikitext2,piqa --limit 3 --seqlen 64
  run andactl -q generate $D.q --prompt "hello" --max-new-tokens 4
  run andactl -q generate $D.u --prompt "hello" --max-new-tokens 4 --attention sdpa
  run andactl -q inspect $D.q
  run andactl -q bench $D $D.q --prompt-tokens 16 --gen-tokens 4 --batch 1,2
  run andactl -q export $D.u --to compressed-tensors -o $D.ct
  run python -c "import andactl,sys; m,t=andactl.load('$D.q'); import transformers as tr; tr.AutoModelForCausalLM.from_pretrained('$D.q')"
  echo "[$F] done"
done
