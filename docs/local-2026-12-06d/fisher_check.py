"""Scratch (stop 47): `andactl slice ... --basis fisher` with a held-out check at every residual point.
Candidates for the point's basis: PCA's, the shipped fisher search (Adam 0.01 x 300) and the finer one
(Adam 0.001 x 300); each is applied to held-out sequences carried through the same sequential sweep (upstream
already cut by the chosen bases), the rest of the (still dense) model is run from that point, and the candidate
whose KL(dense || that) per token is lowest is kept. Held-out: alpaca/train, 4 x 512 tokens, seed 1234
(their rows carry mask 0 into the sweep's Gram matrices, so H is the calibration's alone).
usage: python fisher_check.py [andactl slice args...]"""
import os
import sys

import torch

from andactl.data.calibration import CalibrationConfig, build_calibration
from andactl.models.adapters import get_adapter
from andactl.models.loading import load_model
from andactl.passes import rotate
from andactl.passes.pca import fisher_basis, pca_basis

CANDIDATES = os.environ.get("CANDIDATES", "pca,f01,f001").split(",")
tok = load_model("smollm2-135m", "float32").tokenizer
HELD_IDS = build_calibration(CalibrationConfig("alpaca", samples=4, seqlen=512, batch_size=4, seed=1234), tok,
                             os.environ["ANDACTL_DATA_DIR"])
G = {}
orig_capture = rotate.capture_layer0_inputs


def capture(model, layer0, calibration):
    states = orig_capture(model, layer0, calibration)
    held = orig_capture(model, layer0, HELD_IDS)
    assert len(held) == 1
    with torch.no_grad():
        G["ref"] = torch.log_softmax(model(input_ids=HELD_IDS.input_ids, use_cache=False).logits.float(), -1)
    for st in held:
        st.mask = torch.zeros_like(st.mask)  # nothing of theirs enters H
    G["held"], G["model"] = held, model
    return states + held


@torch.no_grad()
def held_kl(point, Q, d):
    adapter = get_adapter(G["model"])
    layers = list(adapter.layers())
    if point == 0:
        kind, i = "in", 0
    elif point % 2:
        kind, i = "mid", (point - 1) // 2
    else:
        kind, i = "out", point // 2 - 1
    total, n = 0.0, 0
    for st in G["held"]:
        x = rotate._project(st.x, Q.to(st.x.device), d)
        start = 0 if kind == "in" else i + 1
        if kind == "mid":
            L = layers[i]
            x = x + adapter.run_mlp(L, adapter.mlp_norm(L)(x))
        for L in layers[start:]:
            x = x + adapter.run_attention(L, adapter.attn_norm(L)(x), st.kwargs)
            x = x + adapter.run_mlp(L, adapter.mlp_norm(L)(x))
        lp = torch.log_softmax(adapter.head()(adapter.final_norm()(x)).float(), -1).reshape(-1, G["ref"].shape[-1])
        ref = G["ref"].reshape(-1, lp.shape[-1])  # one held-out batch (checked in capture)
        total += float((ref.exp() * (ref - lp)).sum())
        n += lp.shape[0]
    return total / n


def call(self, acc, device, d):
    acc.all_reduce()
    if d >= acc.H.shape[0]:
        vals, Q = pca_basis(acc.H)
        self.ratios.append(1.0)
    else:
        F = self.fisher[self.point].to(acc.H.device)
        found = {}
        if "pca" in CANDIDATES:
            v, q = pca_basis(acc.H)
            found["pca"] = (v, q, 1.0)
        if "f01" in CANDIDATES:
            found["f01"] = fisher_basis(acc.H, F, d, 300, 0.01)
        if "f001" in CANDIDATES:
            found["f001"] = fisher_basis(acc.H, F, d, 300, 0.001)
        kls = {k: held_kl(self.point, v[1], d) for k, v in found.items()}
        best = min(kls, key=kls.get)
        vals, Q, ratio = found[best]
        self.ratios.append(ratio)
        print(f"point {self.point}: " + "  ".join(f"{k} {kls[k]:.4f} (est {found[k][2]:.3f})" for k in kls)
              + f"  -> {best}", file=sys.stderr, flush=True)
    self.point += 1
    return rotate.broadcast(vals), rotate.broadcast(Q).to(device)


rotate.capture_layer0_inputs = capture
rotate._Bases.__call__ = call
from andactl.cli.main import main  # noqa: E402

sys.argv = ["andactl", "slice"] + sys.argv[1:]
main()
