"""Diagnostic: how much of the uncentred XᵀX that SliceGPT's PCA maximises comes from a few
outlier tokens of SmolLM2's residual stream (massive activations), per layer input.

    python benchmarks/residual_outliers.py --samples 4 --seqlen 512
"""
from __future__ import annotations

import argparse

import torch

from andactl.data.calibration import CalibrationConfig, build_calibration
from andactl.data.datasets import resolve_data_dir
from andactl.models.loading import load_model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--seqlen", type=int, default=512)
    ap.add_argument("--layers", default="0,1,5,10,15,20,25,29")
    a = ap.parse_args()
    lm = load_model(a.model)
    cal = build_calibration(CalibrationConfig(samples=a.samples, seqlen=a.seqlen, batch_size=a.samples), lm.tokenizer, resolve_data_dir(None))
    layers = lm.adapter.layers()
    wanted = [int(i) for i in a.layers.split(",")]
    grabbed: dict[int, torch.Tensor] = {}
    hooks = [layers[i].register_forward_pre_hook(lambda m, args, kw, i=i: grabbed.__setitem__(i, (args[0] if args else kw["hidden_states"]).detach()), with_kwargs=True) for i in wanted]
    with torch.no_grad():
        lm.model(input_ids=cal.input_ids, use_cache=False)
    for h in hooks:
        h.remove()
    print("| layer input | max/median token norm | share of trace(XᵀX) from the top 1% tokens | from position 0 | share of trace kept by top 75% PCs (all tokens) | same, position 0 excluded, per-token normalised | positions ≥ 1, normalised, in the all-token basis |")
    print("|---|---|---|---|---|---|---|")
    for i in wanted:
        x = grabbed[i].double()  # [B, S, D]
        sq = x.pow(2).sum(-1)  # [B, S]
        flat = sq.flatten()
        top = flat.topk(max(1, flat.numel() // 100)).values.sum() / flat.sum()
        pos0 = sq[:, 0].sum() / flat.sum()
        X = x.reshape(-1, x.shape[-1])
        d = int(0.75 * x.shape[-1])
        ev, Q = torch.linalg.eigh(X.T @ X)
        ev, Q = ev.flip(0), Q.flip(1)
        Xn = x[:, 1:].reshape(-1, x.shape[-1])
        Xn = Xn / Xn.norm(dim=-1, keepdim=True)
        evn = torch.linalg.eigvalsh(Xn.T @ Xn).flip(0)
        cross = (Xn @ Q[:, :d]).pow(2).sum() / Xn.pow(2).sum()
        print(f"| {i} | {float(sq.sqrt().max() / sq.sqrt().median()):.1f} | {float(top):.3f} | {float(pos0):.3f} | "
              f"{float(ev[:d].sum() / ev.sum()):.4f} | {float(evn[:d].sum() / evn.sum()):.4f} | {float(cross):.4f} |")


if __name__ == "__main__":
    main()
