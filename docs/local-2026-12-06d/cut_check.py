"""Scratch (stop 47): does the K-FAC estimate predict what one cut really costs?
On the dense SmolLM2-135M (float32; RMSNorm: its residual stream is the fused model's), for every residual point
rotate visits: H (signal Gram) and F (Monte-Carlo Fisher, residual_fisher) on 8 x 1024 alpaca tokens; candidate
dropped subspaces R (D - d = 144 columns): PCA's, the shipped fisher search's; for each, the true cost of cutting
that point ALONE (x -> x - x R R^T), measured as KL(dense || cut) per token on 8 x 512 held-out alpaca tokens
(another seed), beside the K-FAC estimate. usage: python cut_check.py OUT.json"""
import json
import sys
import time

import torch

from andactl.data.calibration import CalibrationConfig, build_calibration
from andactl.models.loading import load_model
from andactl.passes.pca import fisher_basis, fisher_estimate, pca_basis
from andactl.passes.residual_fisher import collect_residual_fisher, residual_points

torch.manual_seed(0)
lm = load_model("smollm2-135m", "float32")
model, adapter, tok = lm.model, lm.adapter, lm.tokenizer
D, d = adapter.hidden_size, 432
data = "/work/shared/data"
cal = build_calibration(CalibrationConfig("alpaca", samples=8, seqlen=1024, batch_size=1, seed=42), tok, data)
held = build_calibration(CalibrationConfig("alpaca", samples=8, seqlen=512, batch_size=8, seed=1234), tok, data)
points = residual_points(adapter)
layers = list(adapter.layers())

t0 = time.time()
F = collect_residual_fisher(model, adapter, cal, 42)
H = [torch.zeros(D, D, dtype=torch.float64) for _ in points]


def gram(index):
    def hook(module, args, kwargs):
        x = (args[0] if args else kwargs["hidden_states"]).reshape(-1, D).to(torch.float64)
        H[index].addmm_(x.T, x)
    return hook


hs = [m.register_forward_pre_hook(gram(i), with_kwargs=True) for m, i in points]
with torch.no_grad():
    for b in cal.batches():
        model(input_ids=b["input_ids"], use_cache=False)
for h in hs:
    h.remove()
print(f"F and H: {time.time() - t0:.0f} s", file=sys.stderr, flush=True)

with torch.no_grad():
    ref = torch.log_softmax(model(input_ids=held.input_ids, use_cache=False).logits.float(), -1)


def cut_kl(index, R):
    """KL(dense || model with point ``index`` projected off span(R)), nats per token."""
    R = R.to(torch.float32)
    handles, store = [], {}

    def proj(x):
        return x - (x @ R) @ R.T

    if index % 2 == 0:  # a layer's input or the final norm's input: project the residual entering it
        module = layers[index // 2] if index // 2 < len(layers) else adapter.final_norm()

        def pre(m, args, kwargs):
            if args:
                return (proj(args[0]), *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": proj(kwargs["hidden_states"])}
        handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
    else:  # the mid residual x_in + attn: the attention's output becomes attn - (x_in + attn) R R^T
        layer = layers[(index - 1) // 2]

        def keep_in(m, args, kwargs):
            store["x"] = args[0] if args else kwargs["hidden_states"]

        def post(m, args, out):
            a = out[0]
            return (a - ((store["x"] + a) @ R) @ R.T, *out[1:])
        handles.append(layer.register_forward_pre_hook(keep_in, with_kwargs=True))
        handles.append(layer.self_attn.register_forward_hook(post))
    try:
        with torch.no_grad():
            lp = torch.log_softmax(model(input_ids=held.input_ids, use_cache=False).logits.float(), -1)
    finally:
        for h in handles:
            h.remove()
    return float((ref.exp() * (ref - lp)).sum(-1).mean())


rows = []
for _, i in points:
    vals, Q = pca_basis(H[i])
    Rp = Q[:, d:]
    _, Qf, ratio = fisher_basis(H[i], F[i], d)
    Rf = Qf[:, d:]
    Hn, Fn = H[i] / H[i].trace(), F[i] / F[i].trace()
    ep, ef = float(fisher_estimate(Rp, Hn, Fn)), float(fisher_estimate(Rf, Hn, Fn))
    kp, kf = cut_kl(i, Rp), cut_kl(i, Rf)
    rows.append({"point": i, "est_pca": ep, "est_fisher": ef, "ratio": ratio, "kl_pca": kp, "kl_fisher": kf,
                 "energy_dropped_pca": float((Rp.T @ H[i] @ Rp).trace() / H[i].trace()),
                 "energy_dropped_fisher": float((Rf.T @ H[i] @ Rf).trace() / H[i].trace())})
    print(f"point {i}: est ratio {ratio:.3f}  KL pca {kp:.4f} fisher {kf:.4f} (x{kf / kp:.3f})", file=sys.stderr,
          flush=True)
json.dump(rows, open(sys.argv[1], "w"), indent=1)
print(f"done: {time.time() - t0:.0f} s", file=sys.stderr)
