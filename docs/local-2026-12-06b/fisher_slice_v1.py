"""Scratch (stop 44): SliceGPT with a gradient-aware basis instead of PCA.

Phase 1, dense model: at every residual point rotate computes a basis for (layer-0 input, each layer's
mid residual, each layer's output) keep a subsample of tokens' (x_t, g_t), g = d loss / d x with
labels sampled from the model itself (MC Fisher: E over labels of (g^T dx)^2 = 2 x the expected KL
increase to second order), and the K-FAC factors F = sum g g^T.
Phase 2: `andactl slice` with rotate._pca patched: the k-th basis's dropped subspace R (dim D - d)
minimises  sum_t w_t (g_t^T R x_t)^2  [FMODE=tok]  or  tr(F R H R)  [FMODE=kfac, H = rotate's own Gram],
plus FLAM x the dropped share of H's energy, started from PCA's dropped subspace.
usage: FMODE=tok python fisher_slice.py OUT [slice args...]
"""
import os
import sys

import torch

torch.set_num_threads(2)
MODE = os.environ.get("FMODE", "tok")
PER_SEQ = int(os.environ.get("FPERSEQ", "256"))
LAM = float(os.environ.get("FLAM", "0"))
ITERS = int(os.environ.get("FITERS", "300"))
NSEQ = int(os.environ.get("FNSEQ", "16"))
SEQLEN = int(os.environ.get("FSEQLEN", "1024"))
RATIO = float(os.environ.get("FRATIO", "0.25"))
out = sys.argv[1]

from andactl.data.calibration import sample_token_runs
from andactl.data.datasets import load_text_rows
from andactl.models.loading import load_model
from andactl.passes import pca as pca_mod
from andactl.passes import rotate as rot

CACHE = os.environ.get("FCACHE", "")
lm = load_model("smollm2-135m", "float32")
model, tok = lm.model, lm.tokenizer
layers = model.model.layers
L, D = len(layers), model.config.hidden_size
P = 1 + 2 * L  # emb, (mid_i, out_i)...
xs = [[] for _ in range(P)]
gs = [[] for _ in range(P)]
ws = [[] for _ in range(P)]
F = [torch.zeros(D, D, dtype=torch.float64) for _ in range(P)]
cur = {}


def grab(p, t):
    sel = cur["sel"]
    xs[p].append(t.detach()[0, sel].clone())

    def on_grad(g):
        g2 = g[0].double()
        F[p].addmm_(g2.T, g2)
        gs[p].append(g[0, sel].detach().clone())
        return g
    t.register_hook(on_grad)


def pre_layer(i):
    def f(mod, args, kwargs):
        t = args[0] if args else kwargs["hidden_states"]
        grab(0 if i == 0 else 2 * i, t)
    return f


def pre_mid(i):
    def f(mod, args):
        grab(2 * i + 1, args[0])
    return f


def pre_norm(mod, args):
    grab(2 * L, args[0])


hs = [layers[i].register_forward_pre_hook(pre_layer(i), with_kwargs=True) for i in range(L)]
hs += [layers[i].post_attention_layernorm.register_forward_pre_hook(pre_mid(i)) for i in range(L)]
hs.append(model.model.norm.register_forward_pre_hook(pre_norm))
if CACHE and os.path.exists(CACHE):
    NSEQ = 0
runs = sample_token_runs(load_text_rows("alpaca", "train", "/work/shared/data"), tok, NSEQ, SEQLEN, seed=42)
gen = torch.Generator().manual_seed(0)
for n, r in enumerate(runs[:NSEQ] if NSEQ else []):
    T = len(r)
    others = torch.randperm(T - 1, generator=gen)[: PER_SEQ - 1] + 1
    sel = torch.cat([torch.zeros(1, dtype=torch.long), others.sort().values])
    cur["sel"] = sel
    w = torch.full((len(sel),), (T - 1) / (len(sel) - 1), dtype=torch.float64)
    w[0] = 1.0
    for p in range(P):
        ws[p].append(w)
    model.zero_grad(set_to_none=True)
    logits = model(input_ids=torch.tensor([r])).logits[0].float()
    with torch.no_grad():
        y = torch.multinomial(torch.softmax(logits, -1), 1, generator=gen)[:, 0]
    torch.nn.functional.cross_entropy(logits, y, reduction="sum").backward()
    print(f"fisher seq {n + 1}/{len(runs)}", file=sys.stderr, flush=True)
for h in hs:
    h.remove()
if NSEQ:
    X = [torch.cat(v).double() for v in xs]
    G = [torch.cat(v).double() for v in gs]
    W = [torch.cat(v) for v in ws]
    if CACHE:
        torch.save({"F": F}, CACHE)
else:
    F = torch.load(CACHE)["F"]
del model, lm
calls = {"k": 0}
d_keep = pca_mod.sliced_dim(D, RATIO, 8)
orig_pca = rot._pca


def orth(A):
    return torch.linalg.qr(A)[0]


def basis(H, p):
    vals, Q = pca_mod.pca_basis(H)
    r = D - d_keep
    Hn = H / H.diagonal().sum()

    def obj(Qr):
        if MODE == "tok":
            a = (G[p] @ Qr) * (X[p] @ Qr)
            f = (W[p] * a.sum(1).pow(2)).sum()
        else:
            f = torch.trace((Qr.T @ F[p] @ Qr) @ (Qr.T @ H @ Qr))
        return f, torch.trace(Qr.T @ Hn @ Qr)

    if MODE == "kfac2":
        Fn = F[p] / F[p].diagonal().sum()
        Qr = Q[:, d_keep:].clone()
        def f2(Qr):
            return torch.trace((Qr.T @ Fn @ Qr) @ (Qr.T @ Hn @ Qr)) + LAM * torch.trace(Qr.T @ Hn @ Qr)
        f0, e0 = f2(Qr), torch.trace(Qr.T @ Hn @ Qr)
        t, fc = 1.0, f0
        for it in range(ITERS):
            g = 2 * (Fn @ Qr @ (Qr.T @ Hn @ Qr) + Hn @ Qr @ (Qr.T @ Fn @ Qr)) + 2 * LAM * Hn @ Qr
            g = g - Qr @ (Qr.T @ g)
            gn = (g * g).sum()
            if gn < 1e-30:
                break
            while True:
                cand = orth(Qr - t * g)
                fn_ = f2(cand)
                if fn_ <= fc - 1e-4 * t * gn or t < 1e-12:
                    break
                t *= 0.5
            if fn_ > fc:
                break
            Qr, fc, t = cand, fn_, t * 2.0
        f1, e1 = fc, torch.trace(Qr.T @ Hn @ Qr)
        A = None
    else:
        A = Q[:, d_keep:].clone().requires_grad_(True)
    with torch.enable_grad():
      if A is not None:
        f0, e0 = obj(A.detach())
        opt = torch.optim.Adam([A], lr=float(os.environ.get("FLR", "0.01")))
        best, bestQ = 1.0 + LAM, A.detach().clone()
        for it in range(ITERS):
            f, e = obj(orth(A))
            loss = f / f0 + LAM * e / e0
            if float(loss) < best:
                best, bestQ = float(loss), A.detach().clone()
            opt.zero_grad()
            loss.backward()
            opt.step()
        Qr = orth(bestQ if os.environ.get("FBEST") else A.detach())
        f1, e1 = obj(Qr)
    # kept space = complement of Qr, each block ordered by H
    U = torch.linalg.svd(torch.eye(D, dtype=torch.float64) - Qr @ Qr.T)[0][:, :d_keep]
    blocks = []
    for B in (U, Qr):
        v, V = torch.linalg.eigh(B.T @ H @ B)
        o = torch.argsort(v, descending=True)
        blocks.append((v[o], B @ V[:, o]))
    newQ = torch.cat([blocks[0][1], blocks[1][1]], 1)
    newv = torch.cat([blocks[0][0], blocks[1][0]])
    print(f"point {p}: obj {f0:.4g} -> {f1:.4g} ({f1 / f0:.3f}x), dropped energy {e0:.4g} -> {e1:.4g}",
          file=sys.stderr, flush=True)
    return newv, newQ


def patched(acc, device):
    p = calls["k"]
    calls["k"] += 1
    acc.all_reduce()
    if p == P - 1:
        vals, Q = pca_mod.pca_basis(acc.H)
        return vals, Q.to(device)
    vals, Q = basis(acc.H, p)
    return vals, Q.to(device)


rot._pca = patched
from andactl.cli.main import main

sys.argv = ["andactl", "slice", "smollm2-135m", "--ratio", str(RATIO), "--cal-samples", "16", "--cal-seqlen",
            "1024", "-o", out] + sys.argv[2:]
main()
