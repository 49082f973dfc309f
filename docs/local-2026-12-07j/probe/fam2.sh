#!/bin/bash
cd /work/s62/p
source /work/env.sh; source /work/main/.venv/bin/activate
CAL="--cal-samples 4 --cal-seqlen 128"
for F in llama qwen2 qwen3 smollm3 phi phi3 opt; do
  D=f_$F
  run() { out=$("$@" 2>&1); rc=$?; [ $rc -ne 0 ] && echo "[$F] FAIL rc=$rc: $*" && echo "$out" | grep -v "it/s\]" | tail -3; }
  [ -d $D ] || continue
  run andactl -q quantize $D $CAL --activations none -o $D.w --overwrite
  run andactl -q export $D.w --to compressed-tensors -o $D.ct --overwrite
  run andactl -q eval $D.ct $D.w --tasks wikitext2 --limit 2 --seqlen 64
  run andactl -q prune $D.s --ratio 0.2 $CAL -o $D.sp --overwrite
  run andactl -q recover $D.p --full --steps 2 --seqlen 64 --batch-size 2 --held-out 2 -o $D.pr --overwrite
  run andactl -q quantize $D.pr $CAL --bits 6 6 6 6 --head int4 --embeddings int4 -o $D.pq --overwrite
  for K in s r l p u q w pq; do
    run python -c "
import andactl, transformers as tr, torch
m=tr.AutoModelForCausalLM.from_pretrained('$D.$K', dtype=torch.float32).eval(); a,_=andactl.load('$D.$K', dtype=torch.float32)
ids=torch.tensor([[5,6,7,8,9]])
with torch.no_grad(): x=m(ids).logits; y=a(ids).logits
assert torch.equal(x,y), (x-y).abs().max()
g=m.generate(ids, max_new_tokens=4, do_sample=False); h=a.generate(ids, max_new_tokens=4, do_sample=False); assert torch.equal(g,h)
"
    run andactl -q generate $D.$K --prompt "hi" --max-new-tokens 3 --chat
  done
  echo "[$F] done"
done
