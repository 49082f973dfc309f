"""Anda CUDA kernels vs cuBLAS and torch's int4 kernel on one GPU, side by side in one run.

    python benchmarks/bench_cuda.py [--out FILE.json] [--device cuda|cpu] [--quick]

GEMM rows: x [T, K] in bf16 and fp16 against a 4-bit weight [N, K] (symmetric, group 128):
``anda_pack`` + ``anda_gemm`` (what AndaLinear runs on CUDA) vs ``F.linear`` on the bf16 / fp16
weight (cuBLAS) vs torch's int4 weight-only kernel (``aten._weight_int4pack_mm``, group 128), at
decode (T = 1, 16; 4096 -> 11008) and prefill (T = 2048; 4096 -> 4096 and SmolLM2's 576 -> 1536)
shapes. Each row also checks the GEMM: max |y - y_ref| / max |y_ref| against float64 math on the
exact operands (the unpacked Anda activations and the dequantized weight).
Module row: an AndaLinear (4096 -> 11008, bf16 in/out) vs nn.Linear in bf16, and its output
against the reference backend. Model rows: a SmolLM2-135M-shaped llama (random weights, 30
layers; the real checkpoint does not travel to the GPU machine) in bf16, dense vs every decoder
linear replaced by AndaLinear (RTN INT4 g64, Anda M = 8): forward tokens/s at 8 x 128 and greedy
decode ms/token at batch 1 with the KV cache; logits of the CUDA path vs the reference backend.
Times: CUDA events (wall clock on CPU), median after warm-up. ``--device cpu --quick`` runs the
same code on small shapes, to check the script without a GPU; ``--device cpu --sections model
--threads 2`` measures the model rows on a CPU (the packed model then runs the C++ CPU kernels).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from andactl.formats.int4 import group_params, quantize_codes  # noqa: E402
from andactl.formats.int4_layout import dequantize_int4, pack_int4  # noqa: E402
from andactl.evaluation.throughput import cpu_name, measure  # noqa: E402
from andactl.kernels import build, ops  # noqa: E402


def timer(dev: torch.device):
    """A function ms(fn, repeat) giving the median time of fn in ms after 3 warm-ups."""
    def ms(fn, repeat: int = 20) -> float:
        for _ in range(3):
            fn()
        times = []
        for _ in range(repeat):
            if dev.type == "cuda":
                s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                s.record(); fn(); e.record(); e.synchronize()
                times.append(s.elapsed_time(e))
            else:
                t = time.perf_counter(); fn(); times.append((time.perf_counter() - t) * 1e3)
        return statistics.median(times)
    return ms


def rtn_int4(w: torch.Tensor, gs: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Symmetric RTN of w [N, K] (K % gs == 0) by the format's own rules (formats/int4.py):
    (codes uint8 [N, K], packed, float32 scales [N, K // gs])."""
    n, k = w.shape
    groups = w.float().reshape(n * (k // gs), gs)
    scale, zero = group_params(groups, symmetric=True)
    codes = quantize_codes(groups, scale[:, None], zero[:, None]).to(torch.uint8).reshape(n, k)
    return codes, pack_int4(codes), scale.reshape(n, k // gs)


def torch_int4(codes: torch.Tensor, scale: torch.Tensor, gs: int):
    """torch's int4 weight-only operands (inner_k_tiles 8), or the reason they are unavailable."""
    try:
        packed = (codes[:, ::2] << 4 | codes[:, 1::2]).contiguous()
        w = torch.ops.aten._convert_weight_to_int4pack(packed, 8)
        sz = torch.stack([scale.t(), torch.zeros_like(scale.t())], -1).to(torch.bfloat16).contiguous()
        return lambda xb: torch.ops.aten._weight_int4pack_mm(xb, w, gs, sz)
    except Exception as exc:  # noqa: BLE001 - reported in the row, the run goes on
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"


def gemm_rows(dev, ms, shapes, mantissas) -> list[dict]:
    gen = torch.Generator(device="cpu").manual_seed(0)
    rows = []
    for T, K, N, gs in shapes:
        w = torch.randn(N, K, generator=gen) * 0.02
        codes, wp, sc = rtn_int4(w, gs)
        wq = dequantize_int4(wp, sc, None, gs, K)
        wp, sc, wq = wp.to(dev), sc.to(dev), wq.to(dev)
        i4 = torch_int4(codes.to(dev), sc, gs) if dev.type == "cuda" else "cuda only"
        x32 = torch.randn(T, K, generator=gen).to(dev)
        for dt in (torch.bfloat16, torch.float16):
            x, wd = x32.to(dt), wq.to(dt)
            base = dict(shape=f"{T}x{K}x{N}", dtype=str(dt).split(".")[1], group=gs,
                        linear_ms=ms(lambda: F.linear(x, wd)))
            if callable(i4) and dt == torch.bfloat16:
                base["int4_mm_ms"] = ms(lambda: i4(x))
            elif not callable(i4):
                base["int4_mm_ms"] = None
                base["int4_mm_error"] = i4
            for m in mantissas:
                words, exps = ops.anda_pack(x, m)
                y = ops.anda_gemm(words, exps, m, K, wp, sc, None, gs)
                xa = ops.anda_unpack(words, exps, m, K)
                ref = F.linear(xa.double(), wq.double())
                err = float((y.double() - ref).abs().max() / ref.abs().max())
                rep = 20 if T <= 16 else 8
                pack_ms = ms(lambda: ops.anda_pack(x, m), rep)
                gemm_ms = ms(lambda: ops.anda_gemm(words, exps, m, K, wp, sc, None, gs), rep)
                both = ms(lambda: ops.anda_gemm(*ops.anda_pack(x, m), m, K, wp, sc, None, gs), rep)
                row = dict(base, M=m, pack_ms=pack_ms, gemm_ms=gemm_ms, pack_gemm_ms=both, rel_err=err,
                           vs_linear=base["linear_ms"] / both)
                if base.get("int4_mm_ms"):
                    row["vs_int4"] = base["int4_mm_ms"] / both
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def module_row(dev, ms, K, N) -> dict:
    from andactl.models.anda_linear import AndaLinear

    gen = torch.Generator(device="cpu").manual_seed(1)
    w = torch.randn(N, K, generator=gen) * 0.02
    _, wp, sc = rtn_int4(w, 128)
    fast = AndaLinear.from_int4(wp.to(dev), sc.to(dev), None, None, K, 128, 8, backend="ops")
    ref = AndaLinear.from_int4(wp.to(dev), sc.to(dev), None, None, K, 128, 8, backend="reference")
    dense = torch.nn.Linear(K, N, bias=False, device=dev, dtype=torch.bfloat16)
    with torch.no_grad():
        dense.weight.copy_(fast.dequantized_weight())
    out = {}
    for T in (1, 16):
        x = torch.randn(T, K, generator=gen).to(dev, torch.bfloat16)
        with torch.no_grad():
            y, y_ref = fast(x), ref(x.float())
            out[f"T{T}"] = dict(anda_ms=ms(lambda: fast(x)), linear_bf16_ms=ms(lambda: dense(x)),
                                out_dtype=str(y.dtype), rel_err=float((y.float() - y_ref).abs().max() / y_ref.abs().max()))
    return out


def smollm2_shaped(dev, layers: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=layers,
                      num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=2048,
                      rope_theta=100000.0, tie_word_embeddings=True, rms_norm_eps=1e-5)
    torch.manual_seed(0)
    return LlamaForCausalLM(cfg).to(dev, torch.bfloat16).eval()


def pack_model(model, backend: str):
    """Every decoder linear -> AndaLinear (RTN INT4 g64 symmetric: 576 = 9 x 64; M = 8), in place."""
    from andactl.models.anda_linear import AndaLinear

    for layer in model.model.layers:
        for parent in (layer.self_attn, layer.mlp):
            for name, lin in list(parent.named_children()):
                if isinstance(lin, torch.nn.Linear):
                    _, wp, sc = rtn_int4(lin.weight.detach().float().cpu(), 64)
                    new = AndaLinear.from_int4(wp, sc, None, None, lin.in_features, 64, 8, backend=backend)
                    setattr(parent, name, new.to(lin.weight.device))
    return model


def model_rows(dev, ms, layers: int, batch: int, seq: int, gen_tokens: int, bench_shapes=()) -> dict:
    out = {}
    ids = torch.randint(0, 49152, (batch, seq), generator=torch.Generator().manual_seed(2)).to(dev)
    one = ids[:1, :16]
    logits = {}
    for kind in ("dense", "packed", "packed-reference"):
        model = smollm2_shaped(dev, layers)
        if kind != "dense":
            pack_model(model, "reference" if kind == "packed-reference" else "ops")
        with torch.no_grad():
            logits[kind] = model(one).logits.float()
            if kind == "packed-reference":
                break
            fwd = ms(lambda: model(ids), repeat=5)
            model.generate(one, max_new_tokens=4, min_new_tokens=4, do_sample=False)  # warm-up
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            model.generate(one, max_new_tokens=gen_tokens, min_new_tokens=gen_tokens, do_sample=False)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            dec = (time.perf_counter() - t0) * 1e3 / gen_tokens
        out[kind] = dict(forward_ms=fwd, forward_tok_s=batch * seq / fwd * 1e3, decode_ms_per_token=dec)
        if bench_shapes:  # `andactl bench`'s own measure (wall clock: main passes shapes on CPU only)
            out[kind]["bench"] = [measure(model, b, p, g, repeat=2).to_dict() for b, p, g in bench_shapes]
        del model
    d = logits["packed"] - logits["packed-reference"]
    out["packed_vs_reference"] = dict(max_abs=float(d.abs().max()), logits_std=float(logits["packed-reference"].std()))
    out["packed_vs_dense_prefill"] = out["packed"]["forward_tok_s"] / out["dense"]["forward_tok_s"]
    out["packed_vs_dense_decode"] = out["dense"]["decode_ms_per_token"] / out["packed"]["decode_ms_per_token"]
    for i, (b, p, g) in enumerate(bench_shapes):
        dn, pk = out["dense"]["bench"][i], out["packed"]["bench"][i]
        out[f"bench_b{b}_p{p}_g{g}"] = dict(prefill_x=pk["prefill_tok_s"] / dn["prefill_tok_s"],
                                             decode_x=pk["decode_tok_s"] / dn["decode_tok_s"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="small shapes (to check the script)")
    ap.add_argument("--sections", default="gemm,module,model", help="comma-separated subset of gemm,module,model")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    res = build.load(cuda=dev.type == "cuda")
    if not res.ok:
        sys.exit(f"bench_cuda: the extension did not build: {res.reason}")
    ms = timer(dev)
    report = dict(torch=torch.__version__, python=platform.python_version(),
                  device=torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu_name(),
                  build_seconds=res.seconds, threads=torch.get_num_threads(), cpu_isa=build.cpu_isa_info())
    if args.quick:
        shapes, mant, kn, model_args = [(1, 256, 384, 128), (16, 256, 384, 128)], (8,), (256, 384), (2, 2, 16, 4)
        bench_shapes = [(1, 32, 4)]
    else:
        shapes = [(1, 4096, 11008, 128), (16, 4096, 11008, 128), (2048, 4096, 4096, 128), (2048, 576, 1536, 64)]
        mant, kn, model_args = (4, 8), (4096, 11008), (30, 8, 128, 32)
        bench_shapes = [(1, 512, 32), (8, 128, 16)]
    for key, fn in (("gemm", lambda: gemm_rows(dev, ms, shapes, mant)),
                    ("module", lambda: module_row(dev, ms, *kn)),
                    ("model", lambda: model_rows(dev, ms, *model_args, bench_shapes if dev.type == "cpu" else ()))):
        if key not in args.sections.split(","):
            continue
        try:
            report[key] = fn()
        except Exception:  # noqa: BLE001 - one failing section must not lose the others
            report[key] = {"error": traceback.format_exc()[-3000:]}
        if args.out:
            args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
