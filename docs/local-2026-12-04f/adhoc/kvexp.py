import sys, time, torch
from transformers.cache_utils import DynamicCache, DynamicLayer
from andactl.models.loading import load_model
from andactl.models.kv_cache import cache_kwargs
torch.set_num_threads(2)

class ReservedLayer(DynamicLayer):
    def lazy_initialization(self, k, v):
        super().lazy_initialization(k, v); self._kb = self._vb = None; self._n = 0
    def update(self, k, v, *a, **kw):
        if not self.is_initialized:
            self.lazy_initialization(k, v)
        n, t = self._n, k.shape[-2]
        if self._kb is None or n + t > self._kb.shape[-2]:
            cap = max(2 * (n + t), 256)
            kb = k.new_empty(*k.shape[:-2], cap, k.shape[-1]); vb = v.new_empty(*v.shape[:-2], cap, v.shape[-1])
            if n:
                kb[..., :n, :].copy_(self._kb[..., :n, :]); vb[..., :n, :].copy_(self._vb[..., :n, :])
            self._kb, self._vb = kb, vb
        self._kb[..., n:n + t, :].copy_(k); self._vb[..., n:n + t, :].copy_(v)
        self._n = n + t
        self.keys = self._kb[..., :self._n, :]; self.values = self._vb[..., :self._n, :]
        return self.keys, self.values

def run(model, ids, gen, reserved):
    key, extra = cache_kwargs(model)
    c = DynamicCache()
    if reserved: c.layer_class_to_replicate = ReservedLayer
    kw = {key: c}
    out = model(input_ids=ids, use_cache=True, **kw, **extra)
    cache, nxt = out[key], out.logits[:, -1].argmax(-1, keepdim=True)
    toks=[nxt]
    t0 = time.perf_counter()
    for _ in range(gen):
        out = model(input_ids=nxt, use_cache=True, **{key: cache}, **extra)
        cache, nxt = out[key], out.logits[:, -1].argmax(-1, keepdim=True); toks.append(nxt)
    return (time.perf_counter() - t0) / gen * 1e3, torch.cat(toks, 1)

if __name__ == "__main__":
  for src in sys.argv[1:]:
      m = load_model(src, "bfloat16", "cpu").model.eval()
      from andactl.kernels.backend import set_model_backend; print(set_model_backend(m, "auto", "cpu"))
      ids = torch.randint(0, 49152, (8, 512), generator=torch.Generator().manual_seed(0))
      with torch.inference_mode():
          run(m, ids[:, :16], 2, False); run(m, ids[:, :16], 2, True)
          for rep in range(2):
              a, ta = run(m, ids, 64, False); b, tb = run(m, ids, 64, True)
              print(src, f"dynamic {a:.2f} ms/step  reserved {b:.2f} ms/step  same tokens {torch.equal(ta, tb)}", flush=True)
      del m
