"""Scratch (stop 48): slice an already sliced (and recovered) artifact further — gradual slicing.

    python reslice.py SRC -o OUT --width 432 [--basis pca|fisher] [--cal-data mix] [--cal-samples 16] [--cal-seqlen 1024]

A pass ``reslice`` run through andactl's own pipeline (load, run, save_artifact): SliceGPT's
sequential sweep on the sliced model itself — at each residual point the calibration signal (kept in
the model's current coordinates, projected onto the kept subspace as the cut model would see it,
through the layer's shortcut matrices) gives a d x d basis (PCA, or the gradient-chosen one with
--basis fisher, its F computed on the sliced model); weights and shortcuts are rotated
(``S <- Q_a^T S Q_b``), the tied table's leading columns and the head's map rotated to match, the
rotated model checked equal to the input (logits), then cut to --width with andactl's apply_dims.
The last layer's output (the head input, 576 wide) is not touched. The self-sampled half of the
calibration is sampled from the DENSE source (what ``slice`` sampled it from), not from SRC.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import torch

from andactl.formats.records import SlicingRecord
from andactl.models.capture import capture_layer0_inputs, resident_device
from andactl.models.structure import apply_dims, dims_record
from andactl.models.tied_head import PrefixEmbedding, is_tied_head
from andactl.passbase import QUANTIZED, Pass, PassConfig, register_pass
from andactl.passes.pca import GramAccumulator, fisher_basis, kept_variance, pca_basis
from andactl.passes.residual_fisher import label_generator, residual_points
from andactl.passes.rotate import _project, _rotate_in, _rotate_out


def fisher_any_width(model, adapter, calibration, seed):
    """residual_fisher.collect_residual_fisher, with each point's width taken from its gradient."""
    device = resident_device(model)
    points = residual_points(adapter)
    fisher = [None for _ in points]
    state = {}

    def watch(index):
        def hook(module, args, kwargs):
            x = args[0] if args else kwargs["hidden_states"]
            if index == 0:
                x = x.detach().requires_grad_(True)
                if args:
                    args = (x, *args[1:])
                else:
                    kwargs = {**kwargs, "hidden_states": x}

            def on_grad(g):
                rows = g.reshape(-1, g.shape[-1])[state["keep"]].to(torch.float64)
                if fisher[index] is None:
                    fisher[index] = torch.zeros(g.shape[-1], g.shape[-1], dtype=torch.float64, device=device)
                fisher[index].addmm_(rows.T, rows)

            x.register_hook(on_grad)
            return args, kwargs
        return hook

    frozen = [(q, q.requires_grad) for q in model.parameters()]
    for q, _ in frozen:
        q.requires_grad_(False)
    handles = [m.register_forward_pre_hook(watch(i), with_kwargs=True) for m, i in points]
    sample = calibration.first_sample
    try:
        with torch.enable_grad():
            for batch in calibration.batches():
                for row in range(batch["input_ids"].shape[0]):
                    mask = batch["attention_mask"][row:row + 1].to(device)
                    state["keep"] = mask.reshape(-1) != 0
                    ids = batch["input_ids"][row:row + 1].to(device)
                    logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
                    logits = logits.float().reshape(-1, logits.shape[-1])[state["keep"]]
                    with torch.no_grad():
                        labels = torch.multinomial(torch.softmax(logits, -1).cpu(), 1,
                                                   generator=label_generator(seed, sample))[:, 0]
                    sample += 1
                    torch.nn.functional.cross_entropy(logits, labels.to(device), reduction="sum").backward()
                    print(f"fisher: sequence {sample}", file=sys.stderr, flush=True)
    finally:
        for h in handles:
            h.remove()
        for q, flag in frozen:
            q.requires_grad_(flag)
    return fisher


@dataclass
class ResliceConfig(PassConfig):
    width: int = 432
    basis: str = "pca"
    dense: str = "smollm2-135m"


@register_pass
class Reslice(Pass):
    name = "reslice"
    Config = ResliceConfig
    requires = ("sliced",)
    provides = ()
    excludes = QUANTIZED
    description = "scratch: slice a sliced model further"

    @torch.no_grad()
    def run(self, ctx) -> dict:
        cfg = self.config
        model, adapter = ctx.model, ctx.adapter
        model.eval()
        rec: SlicingRecord = ctx.records.slicing
        D, d2 = rec.hidden_size, int(cfg.width)
        layers = adapter.layers()
        L = len(layers)
        assert all(l.attn_in == rec.embedding_dim and l.mlp_in == rec.embedding_dim for l in rec.layers)
        assert d2 < rec.embedding_dim, (d2, rec.embedding_dim)
        plan = {"embedding": d2, "head_in": rec.head_in, "layers": []}
        for i, l in enumerate(rec.layers):
            plan["layers"].append({"attn_in": d2, "mlp_in": d2, "out": l.out if i == L - 1 else d2})
        # calibration text as `slice` built it (the self half sampled from the dense source)
        if ctx._calibration is None:
            from andactl.data.calibration import build_calibration
            from andactl.models.loading import load_model

            dense = load_model(cfg.dense, "float32", "cpu")
            ctx._calibration = build_calibration(ctx.calibration_config, dense.tokenizer, ctx.data_dir,
                                                 model=dense.model, device=ctx.device)
            del dense
        cal = ctx.calibration()
        fisher = fisher_any_width(model, adapter, cal, ctx.seed) if cfg.basis == "fisher" else None
        device = resident_device(model)
        states = capture_layer0_inputs(model, layers[0], cal)
        # reference logits of the first batch (the rotation must not change them)
        b0 = next(iter(cal.batches()))
        ref = model(input_ids=b0["input_ids"][:2], attention_mask=b0["attention_mask"][:2], use_cache=False).logits

        point = [0]
        ratios = []

        def basis(acc, d):
            vals, Q = pca_basis(acc.H)
            if fisher is not None and d < acc.H.shape[0]:
                vals, Q, r = fisher_basis(acc.H, fisher[point[0]].to(acc.H.device), d)
                ratios.append(r)
            point[0] += 1
            return vals, Q.to(device)

        def gram(xs_masks, width):
            acc = GramAccumulator(width, device)
            for x, m in xs_masks:
                acc.add(x, m)
            return acc

        kept = []
        acc = gram([(st.x, st.mask) for st in states], states[0].x.shape[-1])
        vals, Q_emb = basis(acc, d2)
        kept.append({"embedding": kept_variance(vals, d2)})
        for st in states:
            st.x = _project(st.x, Q_emb, d2)
        Q_in = Q_emb
        Qs = []
        for i, layer in enumerate(layers):
            dims = plan["layers"][i]
            for st in states:
                h = adapter.run_attention(layer, adapter.attn_norm(layer)(st.x), st.kwargs)
                st.x = layer._add(st.x, layer.attn_shortcut, h)
            vals_mid, Q_mid = basis(gram([(st.x, st.mask) for st in states], st.x.shape[-1]), dims["mlp_in"])
            for st in states:
                x = _project(st.x, Q_mid, dims["mlp_in"])
                st.x = layer._add(x, layer.mlp_shortcut, adapter.run_mlp(layer, adapter.mlp_norm(layer)(x)))
            width_out = st.x.shape[-1]
            if dims["out"] < width_out:
                vals_out, Q_out = basis(gram([(st.x, st.mask) for st in states], width_out), dims["out"])
                kv_out = kept_variance(vals_out, dims["out"])
            else:  # the head input: left as it is
                Q_out = torch.eye(width_out, dtype=torch.float64, device=device)
                kv_out = 1.0
                point[0] += 1
            for st in states:
                st.x = _project(st.x, Q_out, dims["out"])
            Qs.append((Q_in, Q_mid, Q_out))
            kept.append({"mlp_in": kept_variance(vals_mid, dims["mlp_in"]), "out": kv_out})
            Q_in = Q_out
            print(f"reslice: layer {i} kept {kept[-1]}", file=sys.stderr, flush=True)
        del states
        # rotate (full d x d: the model's function is unchanged)
        for layer, (Qa, Qm, Qb) in zip(layers, Qs):
            for lin in adapter.attn_inputs(layer):
                _rotate_in(lin, Qa)
            _rotate_out(adapter.attn_output(layer), Qm)
            for lin in adapter.mlp_inputs(layer):
                _rotate_in(lin, Qm)
            _rotate_out(adapter.mlp_output(layer), Qb)
            dt = layer.attn_shortcut.dtype
            layer.attn_shortcut = (Qa.T @ layer.attn_shortcut.double() @ Qm).to(dt)
            layer.mlp_shortcut = (Qm.T @ layer.mlp_shortcut.double() @ Qb).to(dt)
        emb = adapter.embeddings()[0]
        d1 = rec.embedding_dim
        if isinstance(emb, PrefixEmbedding):
            head = adapter.head()
            assert is_tied_head(head)
            t = head.table.weight
            t.data[:, :d1] = (t.data[:, :d1].double() @ Q_emb).to(t.dtype)
            p = head.pre.weight
            p.data[:d1, :] = (Q_emb.T @ p.data[:d1, :].double()).to(p.dtype)
        else:
            _rotate_in(emb, Q_emb)
        out = model(input_ids=b0["input_ids"][:2], attention_mask=b0["attention_mask"][:2], use_cache=False).logits
        err = float((out - ref).abs().max() / ref.abs().max())
        print(f"reslice: rotated model vs input, max |dlogit| / max |logit| = {err:.2e}", file=sys.stderr)
        assert err < 1e-4, err
        # cut
        record = dims_record(plan, adapter.parallel_blocks)
        record["tied_head"] = rec.tied_head
        if isinstance(emb, PrefixEmbedding):
            emb.embedding_dim = d2
        apply_dims(adapter, record, ctx.layers)
        record["hidden_size"] = D
        ctx.structure.append(record)
        ctx.records.slicing = SlicingRecord.from_plan(D, plan, rec.tied_head)
        ctx.provided.discard("recovered")
        return {"width": d2, "basis": cfg.basis, "rotation_check": err, "kept_variance": kept,
                "fisher_estimate_vs_pca": [round(r, 4) for r in ratios]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--width", type=int, default=432)
    ap.add_argument("--basis", default="pca")
    ap.add_argument("--cal-data", default="mix")
    ap.add_argument("--cal-samples", type=int, default=16)
    ap.add_argument("--cal-seqlen", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    from andactl.data.datasets import resolve_data_dir
    from andactl.pipeline import RunOptions, run_recipe
    from andactl.recipe import Recipe

    recipe = Recipe(passes=[{"pass": "reslice", "width": a.width, "basis": a.basis}],
                    calibration={"dataset": a.cal_data, "split": "train", "samples": a.cal_samples,
                                 "seqlen": a.cal_seqlen, "batch_size": 16, "seed": a.seed})
    opts = RunOptions(model=a.src, output=a.output, seed=a.seed, data_dir=resolve_data_dir(None))
    ctx, path, _ = run_recipe(recipe, opts)
    print(path)


if __name__ == "__main__":
    main()
