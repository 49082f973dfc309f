"""``--dry-run``: peak host RAM, device memory, disk and time per pass, from the config alone.

No weight is read: the model's shapes come from its ``config.json`` (or a GGUF header), the
module tree is built on torch's ``meta`` device (an artifact's structure records are replayed on
it, so sliced widths are exact), and sizes on disk come from ``stat``. The formulas are in
docs/MEMORY.md; every constant lives here.

Memory model of the current (whole-model, in-memory) pipeline, bytes, ``b`` = bytes per element
of the run dtype, ``P`` = parameters, ``P_out`` = parameters written, ``N`` = calibration tokens
held by one rank, ``D`` = hidden, ``I`` = widest linear output, ``H`` = heads, ``V`` = vocab,
``K_max`` = widest linear input, ``L_max`` = elements of the largest matrix, ``C`` = one float64
band of ``passes/blockwise.py``:

    resident = BASE_RSS + P*b                  (interpreter + libraries; the model, memory-mapped)
    fuse     = resident + V*D*b + 2*C*8        (untied head; one float64 band)
    rotate   = resident + ROTATE_EXTRA*P*b + N*D*b + B*S*(4*D + 2*I)*4 + B*H*S*S*4 + 4*D*D*8
               (basis fisher: at least resident + L*(S*(4*D + 2*I)*4 + H*S*S*4) + 3*S*V*4, one sequence's
                backward with every layer's activations kept; seconds + 3 forwards + the subspace search)
    slice    = resident + P_out*b              (cut copies while the source mapping is alive)
    gptq     = resident + N*D*b + B*S*(4*D + 2*I)*4 + K_max^2*8 + 4*G_max*4 + P_lin*INT4
               (G_max = elements of the largest stack of linears sharing one input, e.g. gate+up;
                one float64 [K, K] matrix factored in place: passes/gptq.py;
                uint8 INT4 codes until pack, on disk when streamed)
    write    = resident + WRITE_EXTRA*P_out*b_out
    sample   = resident + B_s*S*L*2*W_kv*b + 2*B_s*V*4
               (``--cal-data self|mix``: the KV cache of B_s = min(batch, sampled sequences) sequences of
                S tokens, L layers, K/V width W_kv; seconds = ceil(n / B_s) * (S - 1) decode steps;
                recover's ``--train-data self`` the same from the teacher, B_s = model_text.sampling_rows)
    recover  = teacher phase + training rows (``recover_rows``; formulas in docs/MEMORY.md)

ROTATE_EXTRA and WRITE_EXTRA are fitted to ``benchmarks/memory_scaling.py`` (random bf16 Llamas of
0.13B and 0.49B parameters, 8x256 calibration, AMD EPYC Zen 3): the measured peaks were within 5%
of this model.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from andactl.data.model_text import kv_width, model_samples, samples_model, sampling_rows
from andactl.errors import ConfigError, ModelError
from andactl.kernels import split_gemm
from andactl.models.slice_count import SliceTerms, recorded_tied_source, slice_terms, sliced_parameters
from andactl.passes.blockwise import CHUNK_ELEMENTS

log = logging.getLogger("andactl")

BASE_RSS = 480 * 2**20  # python + torch + transformers + tokenizers (fitted intercept of the measured peaks)
FISHER_PASSES = 3  # rotate basis fisher: a forward and a backward (twice its FLOPs) before the PCA sweep
FISHER_SEARCH_FLOPS = 12  # per search step and point, x D^2 x (D - d): R^T F R, R^T H R, QR, and their backward
# A dry run that probes the CPU times the search's step itself (pca.search_step_seconds) at the
# model's width, or at this width (the same share cut) for wider models, scaled by D^2 x cut: the
# step's small float64 products and QR run at a CPU-dependent share of the GEMM probe's rate (at
# SmolLM2's shape a search took 0.8-1.1x the time FISHER_SEARCH_FLOPS at the float64 rate predicts
# on the 2-core Xeon with AMX, 0.6-1.0x on the 2-core AMD EPYC Zen 4: stops 46 and 57,
# docs/local-2026-12-07e/fisher_step.log)
FISHER_PROBE_MAX_HIDDEN = 1024
ROTATE_EXTRA = 0.6  # rotation rewrites every page of the mapped model plus allocator retention (fitted)
WRITE_EXTRA = 1.2  # the sliced copies + one tensor in flight of the streaming writer (fitted)
STREAM_RAM_SHARE = 0.8  # default --max-memory: this share of MemAvailable
# What an artifact stores per INT4 weight group beside the codes: a float16 scale, and a uint8 zero
# point for asymmetric groups (formats/int4.py, as written by formats/artifact.py)
INT4_SCALE_BYTES, INT4_ZERO_BYTES = 2, 1
INT4_UNPACKED_BYTES_PER_WEIGHT = 1 + 4 / 128  # formats.int4.Int4Weight between quantize_weights and pack (uint8 codes)
STREAM_LAYER_COPIES = 2  # a streamed layer: its tensors + the read/spill copy in flight
# quantize_tables: working copies of one vocabulary x hidden table in the run dtype (a Qwen3-0.6B-shaped
# RTN quantize peaks in this pass at 4.36-4.54 GB: the resident float32 model + ~2.6 tables; stop 37)
TABLE_COPIES = 3
# CPU time: the passes' forwards (and GPTQ's float32 updates) sustain this share of the FLOP rate a
# short torch.mm runs at in the same dtype on this machine (cpu_flops). Fitted on SmolLM2's
# anda_search evaluations and GPTQ in float32 on a 2-core Xeon with AMX (9.1 s per evaluation, 21 s
# of GPTQ; 297 GFLOP/s probe); on the AMD EPYC Zen 3 of earlier rounds the same share reproduces
# the 4e10 float32 FLOP/s fitted there from a ~100 GFLOP/s GEMM. 16-bit dtypes never count as faster
# than float32 (the passes are not GEMM alone), float64 (rotation, eigendecompositions) at half it.
CPU_EFFICIENCY = 0.41
# A probe beside other work reads low: `slice --basis fisher --cal-data mix --dry-run` said 2320 s
# beside a 2-thread eval on the 2-core Xeon and 411 s idle (measured run: 340 s; stop 46)
BUSY_LOAD_SHARE = 0.5
FLOAT64_SHARE = 0.5
GPU_FLOPS = 5.0e13
# FLOP/s the estimate assumes where it must not probe the CPU (a run follows in the same process)
NOMINAL_FLOPS = {"run": 1.0e11, "float32": 1.0e11, "float64": 5.0e10}
EIGH_FLOPS_PER_D3 = 9.0  # symmetric eigendecomposition ~ 9 D^3 float64 FLOPs
DISK_BYTES_PER_SECOND = 300e6  # read/write throughput assumed for loading and writing
GPTQ_FLOPS_PER_WEIGHT_K = 2.0  # column-wise error update: ~2 K float32 FLOPs per weight (fitted: 0.13B/0.49B/1.07B within 30%)
GPTQ_HESSIAN_BYTES = 8  # per [K, K] element: the float64 H, factored in place and read by blocks (passes/gptq.py)
GPTQ_WEIGHT_COPIES = 4  # float32 copies of a stacked weight GPTQ holds (W, Wᵀ, codes, dequantized)
# Sampling text from the model (--cal-data self|mix, recover --train-data self), one decode step of B_s
# sequences: Python and dispatch per layer + the weights and the KV cache read from memory + (2*P*B_s +
# attention over S/2 keys on average) at SAMPLE_RATE_FACTOR x the run FLOP rate (a decode step's
# GEMMs of 8-64 rows run at about the bare probe's rate, where whole forwards run at CPU_EFFICIENCY of
# it). Fitted on SmolLM2-135M in float32 on the 2-core Xeon with AMX, stop 53's draw_tokens sampler
# (docs/local-2026-12-07a/sample_fit.py): 86.5 / 101.4 / 125.6 / 178.0 ms per step at 8 / 16 / 32 / 64
# rows of 256 tokens and 97.0 at 8 of 1024, predicted 87.8 / 100.7 / 126.4 / 177.8 and 95.9.
SAMPLE_STEP_SECONDS_PER_LAYER = 1.6e-3
SAMPLE_RATE_FACTOR = 2.3
MEMORY_BYTES_PER_SECOND = 20e9

# recover (passes/recover*.py): the head loss's chunk costs this many [256, V] float32 tensors (its three
# reused buffers, the top-k phase's two, and what the allocator holds around them); a trained
# weight costs its gradient and AdamW's two moments in the run dtype; a token costs the student 6 FLOPs
# per parameter (forward 2, backward 4), 2 more in the share of layers that recompute their
# activations (recover_train.recomputed_layers; the rest keep layer_activation_bytes each), and the
# teacher 2. Fitted
# to stop 51's measured peaks, never below them (SmolLM2 sliced 25% --full: 3.25 GB in process with the
# packed heads; a Qwen3-0.6B-shaped one: LoRA 6.31 / 4.16 GB with top-64 targets, --full 10.21 / 7.39 GB;
# docs/MEMORY.md).
HEAD_CHUNK_COPIES = 7
TRAINED_WEIGHT_COPIES = 3
STUDENT_FLOPS_PER_PARAM, RECOMPUTE_FLOPS_PER_PARAM, TEACHER_FLOPS_PER_PARAM = 6, 2, 2
# recover's training runs under bf16 autocast where the CPU has native bf16: the student's steps at
# a train share of a 1024^3 bf16 torch.mm's rate (a 256-row one reads ±15% from one run to the next on
# AMX, this one ±8%), forward-only work (the in-process teacher, the held-out evaluations) at a
# forward share of it; elsewhere both at the run rate. The shares depend on what computes bf16
# (AUTOCAST_SHARES, keyed by whether AMX tiles are expected: split_gemm.tiles_expected):
# - AMX: a step reaches a small share of the tiles' rate, since the rest of it (float32 work,
#   elementwise passes, the optimiser) runs on the vector units. Fitted on the 2-core Xeon (stop 52,
#   a 1.07e12 FLOP/s probe): SmolLM2 sliced 25% --full, 40 steps, trained in 175 s with top-k targets
#   and 180 s with the teacher in process, whose forward of 4 x 256 tokens took 0.58 s.
# - AVX512-BF16 without AMX: both shares of the Xeon's scaled by 1.9, the estimate's training row over
#   the loop measured on the 2-core AMD EPYC Zen 4 (stop 56, a 4.35e11 FLOP/s probe: the same recovery,
#   40 steps in 229 s against 431 s estimated with the Xeon's shares, 190 steps in 1008 s against 1919;
#   docs/RECOVER.md thirty-first round).
AUTOCAST_PROBE_ROWS = 1024
AUTOCAST_SHARES = {"amx": (0.22, 0.50), "avx512_bf16": (0.42, 0.95)}
# the top-k phase's selection per teacher logit (torch.topk, the tail's two logsumexps, the copies):
# as long as this many bytes moved at MEMORY_BYTES_PER_SECOND (fitted on stop 52's phase of 42.3 s
# for SmolLM2's 168 x 256 positions of a 49152-wide vocabulary: 13.9 s beside the teacher's load,
# its forward at the forward share and the student parked on disk and read back)
TOPK_BYTES_PER_LOGIT = 130
# what a refusal / warning suggests when the in-process teacher is what does not fit
TOPK_HINT = "recover --teacher-topk 64 never holds the teacher beside the student"

SLICE_PASSES = ("fuse_norms", "rotate", "slice")


@dataclass
class ModelShape:
    """Sizes a memory estimate needs, read from a config (no weights)."""

    model_type: str
    parameters: int
    hidden: int
    layers: int
    heads: int
    vocab: int
    widest: int  # the largest linear output width in a decoder layer (MLP intermediate)
    largest_linear: int  # elements of the largest linear / embedding matrix
    largest_k: int  # the largest linear input width (GPTQ Hessian side)
    weights_on_disk: int  # bytes of the source's weight files (0 for a hub id not downloaded)
    layer_params: int = 0  # parameters of the largest decoder layer (what a streamed run holds at once)
    largest_group: int = 0  # elements of the largest stack of linears reading one input (GPTQ works on it)
    resident_params: int = 0  # parameters outside the decoder layers (embeddings, final norm, head)
    kv_width: int = 0  # width of one layer's cached keys (= values): KV heads x head dim
    linear_params: int = 0  # weights of the decoder layers' linears (what recover --full trains)
    linear_edges: int = 0  # sum of in + out over those linears (a LoRA adapter of rank r: r x this)
    slicing: SliceTerms | None = None  # what sliced_parameters needs (None: rotated or packed)
    mlp_width: int = 0  # MLP neurons per layer
    neuron_params: int = 0  # parameters one MLP neuron holds in one layer (input rows, their biases, output column)


def planned_parameters(shape: "ModelShape", step: dict) -> int:
    """Parameters the resolved ``rotate`` step leaves once ``slice`` cuts them (sliced_parameters of
    its plan); ConfigError for a source that cannot be sliced (rotated or packed: the pass manager
    refuses such a recipe first)."""
    from andactl.passes.rotate import RotateConfig, slicing_plan

    if shape.slicing is None:
        raise ConfigError("rotate: the source is already rotated or quantized; it cannot be sliced again")
    cfg = RotateConfig(ratio=float(step.get("ratio", 0.0)), round_to=int(step.get("round_to", 8)),
                       slice_head=bool(step.get("slice_head")))
    return sliced_parameters(shape.slicing, slicing_plan(shape.hidden, shape.layers, cfg))


def pruned_neurons(shape: ModelShape, step: dict) -> int:
    """MLP neurons the resolved ``prune_mlp`` step removes per layer (exact for a source not sliced
    in the same recipe: a slice before it narrows the neurons' rows, not counted here)."""
    from andactl.passes.prune_mlp import kept_neurons

    if not shape.mlp_width:
        return 0
    return shape.mlp_width - kept_neurons(shape.mlp_width, float(step["ratio"]), int(step["round_to"]))


def _shape_fields(shape: ModelShape) -> dict:
    """The report's ``shape``: ModelShape's sizes (its per-layer slicing terms left out)."""
    return {k: v for k, v in asdict(shape).items() if k != "slicing"}


def int4_bytes_per_weight(step: dict) -> float:
    """Artifact bytes of one INT4 weight under the resolved ``quantize_weights`` step: half a byte of
    code plus its group's scale (and zero point) spread over the group (one group per row: as 4096)."""
    group = int(step["group_size"])
    group = group if group > 0 else 4096
    meta = INT4_SCALE_BYTES + (0 if step["symmetric"] else INT4_ZERO_BYTES)
    return 0.5 + meta / group


def _gemm_flops(dtype: torch.dtype, rows: int = 256) -> float:
    """FLOP/s of a (``rows`` x 1024) . (1024 x 1024) torch.mm in ``dtype`` on this CPU at torch's
    current thread count (best of three after a warm-up; ~2 ms in float32 on a 2-core Xeon)."""
    import time

    a, b = torch.ones(rows, 1024, dtype=dtype), torch.ones(1024, 1024, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * rows * 1024 * 1024 / max(best, 1e-9)


def busy_warning() -> str | None:
    """One line when other work already keeps this machine's CPUs busy (1-minute load average at
    least BUSY_LOAD_SHARE of the CPU count), since the rate probe then reads low and every time
    estimate high; None on an idle machine or where the load is unknown."""
    try:
        load, cpus = os.getloadavg()[0], os.cpu_count() or 1
    except (OSError, AttributeError):
        return None
    if load < BUSY_LOAD_SHARE * cpus:
        return None
    return (f"the CPUs are busy (1-minute load {load:.1f} on {cpus} CPUs): the time estimates assume an idle "
            "machine and will read high")


def cpu_flops(dtype: torch.dtype) -> dict:
    """Sustained FLOP/s the time estimate uses on this CPU: ``run`` (forwards in ``dtype``),
    ``float32`` (GPTQ's updates) and ``float64`` (rotation, eigendecompositions); where training
    runs under bf16 autocast (native bf16), ``autocast``: the AUTOCAST_PROBE_ROWS bf16 GEMM's rate
    that recover's AUTOCAST_SHARES scale (autocast_shares)."""
    from andactl.models.loading import native_bf16

    f32 = CPU_EFFICIENCY * _gemm_flops(torch.float32)
    run = f32 if dtype in (torch.float32, torch.float64) else min(f32, CPU_EFFICIENCY * _gemm_flops(dtype))
    rates = {"run": run, "float32": f32, "float64": FLOAT64_SHARE * f32}
    if native_bf16():
        rates["autocast"] = _gemm_flops(torch.bfloat16, AUTOCAST_PROBE_ROWS)
    return rates


def fisher_search_seconds(D: int, cut: int, rates: dict, probe: bool) -> float:
    """Seconds of one subspace search of `rotate --basis fisher` (FISHER_ITERS steps) at width
    ``D`` with ``cut`` directions dropped: with ``probe`` a step timed on this CPU
    (pca.search_step_seconds; at FISHER_PROBE_MAX_HIDDEN and the same share cut for wider models,
    scaled by D^2 x cut), else FISHER_SEARCH_FLOPS per step at ``rates["float64"]``."""
    from andactl.passes.pca import FISHER_ITERS, search_step_seconds

    if not probe:
        return FISHER_ITERS * FISHER_SEARCH_FLOPS * D**2 * cut / rates["float64"]
    dp = min(D, FISHER_PROBE_MAX_HIDDEN)
    cp = max(1, round(cut * dp / D))
    return FISHER_ITERS * search_step_seconds(dp, cp) * (D**2 * cut) / (dp**2 * cp)


def autocast_shares() -> tuple[float, float]:
    """(train, forward) shares of the ``autocast`` probe that recover's steps and forward-only work
    reach on this CPU: AUTOCAST_SHARES["amx"] where AMX tiles are expected, else those of AVX512-BF16."""
    return AUTOCAST_SHARES["amx" if split_gemm.tiles_expected() else "avx512_bf16"]


def probed_rates(dtype_name: str) -> dict:
    """cpu_flops of ``dtype_name`` probed in a child process, for an estimate that a run in this
    process follows (the probe's GEMMs must not run here first: see _estimate)."""
    import json
    import subprocess
    import sys

    code = ("import json; from andactl.dry_run import cpu_flops; from andactl.models.loading import parse_dtype; "
            f"print(json.dumps(cpu_flops(parse_dtype({dtype_name!r}))))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    try:
        return json.loads(res.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        last = (res.stderr.strip().splitlines() or ["no output"])[-1]
        raise ConfigError(f"could not probe this CPU's rates in a child process (exit {res.returncode}: {last})") from None


def _config_of(source: str):
    """(HF config, andactl meta or {}, weight-file bytes) of ``source``, reading no weights."""
    from andactl.models.loading import ALIASES, alias_file, cache_dir

    path = Path(source).expanduser()
    if source in ALIASES:
        gguf = alias_file(source)
        stat = gguf.stat()
        converted = cache_dir() / "models" / f"{gguf.stem}-{stat.st_size}-{int(stat.st_mtime)}"
        if (converted / "config.json").is_file():
            return _config_of(str(converted))
        return _gguf_config(gguf), {}, stat.st_size
    if path.is_file() and path.suffix == ".gguf":
        return _gguf_config(path), {}, path.stat().st_size
    if path.is_dir() and (path / "config.json").is_file():
        from andactl.formats.reader import build_hf_config, read_config, read_records
        from andactl.formats.records import SECTION

        config = read_config(path)
        meta = {"records": read_records(config, str(path))} if SECTION in config else {}
        try:
            hf = build_hf_config(config) if SECTION in config else _plain_hf_config(config)
        except Exception as err:
            raise ModelError(f"{path}/config.json does not describe a model ({type(err).__name__}: {err})") from err
        size = sum(f.stat().st_size for f in path.glob("*.safetensors")) + sum(f.stat().st_size for f in path.glob("*.bin"))
        return hf, meta, size
    if path.exists():
        raise ModelError(f"'{source}' is neither a model folder (with config.json), a .gguf file nor an andactl artifact")
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(source), {}, 0
    except Exception as err:
        raise ModelError(f"could not read the config of '{source}' ({type(err).__name__})") from err


def _plain_hf_config(config: dict):
    """HF config object of a plain model folder's config.json dict."""
    from transformers import CONFIG_MAPPING

    if config.get("model_type") not in CONFIG_MAPPING:
        raise ModelError(f"config.json names unknown model_type {config.get('model_type')!r}")
    return CONFIG_MAPPING[config["model_type"]].from_dict(config)


def _gguf_config(gguf: Path):
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name)


def _dims(m: nn.Module) -> tuple[int, int]:
    """(rows, columns) of a matrix module: a linear, plain or packed, or an embedding table, plain or
    quantized (packed modules keep their sizes as attributes, not as a ``weight``)."""
    if isinstance(m, nn.Embedding):
        return m.num_embeddings, m.embedding_dim
    return m.out_features, m.in_features


def model_shape(source: str) -> ModelShape:
    """Shapes of ``source`` from its config: the module tree is built on the meta device (an
    artifact's structure records replayed), so counts are exact and nothing is allocated."""
    from transformers import AutoModelForCausalLM

    from andactl.formats.reader import apply_records
    from andactl.models.stats import count_parameters

    hf, meta, on_disk = _config_of(source)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(hf)
        if "records" in meta:
            apply_records(model, meta["records"])
        from andactl.models.adapters import get_adapter

        adapter = get_adapter(model)
    params = count_parameters(model)  # on meta: ties are one tensor object, packed modules count in x out
    linears = [m for m in adapter.layers().modules() if hasattr(m, "in_features") and hasattr(m, "out_features")]
    per_layer = [sum(t.numel() for t in layer.state_dict().values() if t.is_floating_point()) for layer in adapter.layers()]
    mats = [_dims(m) for m in linears + list(adapter.embeddings()) + [adapter.head()]]
    return ModelShape(
        model_type=hf.model_type, parameters=params, hidden=adapter.hidden_size, layers=len(adapter.layers()),
        heads=int(getattr(hf, "num_attention_heads", 1)), vocab=_dims(adapter.head())[0],
        widest=max(m.out_features for m in linears), largest_linear=max(r * c for r, c in mats),
        largest_k=max(m.in_features for m in linears), weights_on_disk=on_disk,
        layer_params=max(per_layer), resident_params=params - sum(per_layer), kv_width=kv_width(hf),
        linear_params=sum(m.in_features * m.out_features for m in linears),
        linear_edges=sum(m.in_features + m.out_features for m in linears),
        largest_group=max(sum(math.prod(_dims(m)) for m in mods) for layer in adapter.layers()
                          for mods in adapter.anda_linears(layer).values() if mods),
        slicing=slice_terms(adapter, recorded_tied_source(meta.get("records"))),
        **_neuron_terms(adapter),
    )


def _neuron_terms(adapter) -> dict:
    """``mlp_width`` and ``neuron_params`` of the first decoder layer (prune_mlp keeps widths uniform)."""
    layer = adapter.layers()[0]
    out = adapter.mlp_output(layer)
    if not hasattr(out, "in_features"):
        return {}
    width = out.in_features
    per = out.out_features
    for lin in adapter.mlp_inputs(layer):
        parts = lin.out_features // width
        per += parts * (lin.in_features + (1 if getattr(lin, "bias", None) is not None else 0))
    return {"mlp_width": width, "neuron_params": per}


def calibration_sampling(shape: ModelShape, cal, b: int, flops: float) -> tuple[float, int]:
    """Time and working memory of sampling ``cal``'s model-generated sequences (none: (0, 0)):
    every rank samples all of them (then keeps its share), ``cal.batch_size`` at a time."""
    own = model_samples(cal.dataset, cal.samples)
    return sampling_seconds_and_bytes(shape, own, min(cal.batch_size, own), cal.seqlen, b, flops) if own else (0.0, 0)


def sampling_seconds_and_bytes(shape: ModelShape, own: int, batch: int, seqlen: int, b: int,
                               flops: float) -> tuple[float, int]:
    """Time and working memory of sampling ``own`` sequences of ``seqlen`` tokens from a model of
    ``shape`` held in ``b`` bytes per element, ``batch`` at a time (andactl.data.model_text), on a
    device whose whole forwards run at ``flops``."""
    B, S, L, D = batch, seqlen, shape.layers, shape.hidden
    cache = B * S * L * 2 * shape.kv_width * b  # full, at the last step
    step_flops = 2.0 * shape.parameters * B + 2.0 * B * S * D * L  # weights; attention over S/2 keys on average
    step = (SAMPLE_STEP_SECONDS_PER_LAYER * L + (shape.parameters * b + cache / 2) / MEMORY_BYTES_PER_SECOND
            + step_flops / (SAMPLE_RATE_FACTOR * flops))
    return math.ceil(own / B) * (S - 1) * step, cache + 2 * B * shape.vocab * 4


def gptq_work_bytes(shape: ModelShape) -> int:
    """GPTQ's own working set for one stack of linears: the float64 Hessian-side matrices and the
    float32 copies of the stacked weight (passes/gptq.py)."""
    return GPTQ_HESSIAN_BYTES * shape.largest_k**2 + GPTQ_WEIGHT_COPIES * shape.largest_group * 4


def teacher_shape(step: dict, opts) -> ModelShape | None:
    """The shape of the teacher a resolved ``recover`` step will load (its ``teacher``, else the
    dense source recorded in the input artifact, else the input itself), None when it needs none."""
    from andactl.formats.artifact import artifact_meta, is_artifact
    from andactl.passes.recover_teacher import dense_source

    if step["method"] != "kd" and not samples_model(step["train_data"]):
        return None
    source = step.get("teacher")
    if not source:
        meta = artifact_meta(Path(opts.model)) if is_artifact(opts.model) else {}
        source = dense_source(meta.get("provenance", {}), opts.model)
    return model_shape(source)


RECOVER_TRAINING_ROW = "recover: training"  # the row recover --minutes scales by a timed step (step_budget)


def recover_rows(step: dict, shape: ModelShape, params: int, b: int, teacher: ModelShape | None, flops: float,
                 on_gpu: bool, forward_flops: float | None = None, sample_flops: float | None = None) -> list[dict]:
    """Rows of a resolved ``recover`` step on a student of ``params`` parameters (``shape`` scaled
    to it): the teacher's phase (loading it beside the student, or alone with ``teacher_topk``: the
    student parked), sampling the training text from it (``train_data`` self: its KV cache beside
    it) and training (student, trained weights' gradients and moments, checkpointed activations, the
    head loss's chunk temporaries, the in-process teacher). The student's steps run at ``flops``,
    forward-only work (the teacher, held-out evaluations) at ``forward_flops`` and sampling, which
    runs in the load dtype without autocast, at ``sample_flops`` (both default ``flops``)."""
    forward_flops = forward_flops or flops
    scale = params / max(1, shape.parameters)
    student = params * b
    trained = (shape.linear_params * scale if step["full"] else step["lora_rank"] * shape.linear_edges * scale)
    tokens = step["batch_size"] * step["seqlen"]
    from andactl.passes.recover_train import layer_activation_bytes, recomputed_layers

    per_layer = layer_activation_bytes(shape.hidden, shape.widest, shape.heads, step["batch_size"], step["seqlen"])
    recompute = recomputed_layers(shape.layers, per_layer, step.get("checkpoint"))
    act = (recompute * tokens * shape.hidden * b + (shape.layers - recompute + min(1, recompute)) * per_layer
           + HEAD_CHUNK_COPIES * min(256, tokens) * shape.vocab * 4)  # kept layers; inputs + one recompute
    sparse = bool(step.get("teacher_topk"))
    # on AMX CPUs the frozen heads may be held packed for split_gemm (recover_loss.uses_split_heads):
    # the student's for the logits and the gradient, the in-process teacher's for its logits (and in
    # the top-k phase); the student's width is taken as the dense one (an upper bound)
    from andactl.passes.recover_loss import split_heads_bytes, uses_split_heads

    tiles, mode = not on_gpu and split_gemm.tiles_expected(), step.get("head_products", "auto")
    with_teacher = teacher is not None and step["method"] == "kd" and not sparse
    t_packed = split_gemm.packed_bytes(teacher.vocab, teacher.hidden) if teacher else 0
    heads = split_heads_bytes((shape.vocab, shape.hidden), (teacher.vocab, teacher.hidden) if with_teacher else None)
    act += heads if uses_split_heads(mode, heads, tiles) else 0
    packed = t_packed if sparse and uses_split_heads(mode, t_packed, tiles) else 0  # the top-k phase
    # under bf16 autocast a step holds a bf16 copy of each trained weight (recover_train._casts_held)
    from andactl.models.loading import native_bf16

    held_casts = trained * 2 if on_gpu or native_bf16() else 0
    work = int(trained * TRAINED_WEIGHT_COPIES * b + held_casts + act)
    t_bytes = teacher.parameters * b if teacher else 0
    t_load = t_bytes + (teacher.weights_on_disk if teacher and not on_gpu else 0)
    steps_tokens = step["steps"] * step["grad_accum"] * tokens
    held = (step["steps"] // step["eval_every"] + 2) * step["held_out"] * step["seqlen"]
    t_params = teacher.parameters if teacher and step["method"] == "kd" else 0
    in_process = 0 if sparse else t_params
    student_flops = STUDENT_FLOPS_PER_PARAM + RECOMPUTE_FLOPS_PER_PARAM * recompute / max(1, shape.layers)
    train_s = (steps_tokens * student_flops * params / flops
               + (steps_tokens * TEACHER_FLOPS_PER_PARAM * in_process + held * 2 * (params + in_process)) / forward_flops)
    targets = steps_tokens + step["held_out"] * step["seqlen"]  # positions the top-k phase scores (at most)
    topk_s = (targets * TEACHER_FLOPS_PER_PARAM * t_params / forward_flops
              + targets * teacher.vocab * TOPK_BYTES_PER_LOGIT / MEMORY_BYTES_PER_SECOND) if sparse and teacher else 0.0
    park = 2 * student / DISK_BYTES_PER_SECOND if sparse and not on_gpu else 0.0  # written out, read back
    teacher_s = t_load / DISK_BYTES_PER_SECOND + topk_s + park if teacher else 0.0

    def host_dev(host: float, dev: float) -> tuple[float, float]:
        return (BASE_RSS + (0 if on_gpu else host), dev if on_gpu else 0)

    rows = []
    if teacher:
        name = "recover: teacher (student parked)" if sparse else "recover: load teacher"
        host, dev = host_dev(t_load + (0 if sparse else student) + (packed if sparse else 0),
                             t_bytes + (0 if sparse else student))
        if on_gpu and sparse:
            host += student  # parked on the CPU
        rows.append({"pass": name, "host_ram_gb": _gb(host), "device_gb": _gb(dev), "seconds": round(teacher_s, 1)})
    n, S = step["steps"] * step["batch_size"] * step["grad_accum"], step["seqlen"]
    own = model_samples(step["train_data"], n) + model_samples(step["train_data"], step["held_out"])
    if teacher and own:  # recover_data.self_text (all of self, half of mix): every sampled row, once
        batch = sampling_rows(teacher.layers, teacher.kv_width, b, S, own)
        sample_s, cache = sampling_seconds_and_bytes(teacher, own, batch, S, b, sample_flops or flops)
        held_now = t_bytes + (0 if sparse else student) + cache
        host, dev = host_dev(held_now, held_now)
        if on_gpu and sparse:
            host += student
        rows.append({"pass": "recover: sample text", "host_ram_gb": _gb(host), "device_gb": _gb(dev),
                     "seconds": round(sample_s, 1)})
    kept_teacher = t_bytes if teacher and step["method"] == "kd" and not sparse else 0
    host, dev = host_dev(student + kept_teacher + work, student + kept_teacher + work)
    rows.append({"pass": RECOVER_TRAINING_ROW, "host_ram_gb": _gb(host), "device_gb": _gb(dev),
                 "seconds": round(train_s, 1)})
    if kept_teacher:
        for r in rows:
            r["hint"] = TOPK_HINT
    return rows


def _storage_bytes(opts) -> int:
    """Bytes per element of the artifact's float tensors (--storage-dtype; fp16 by default)."""
    from andactl.formats.storage import parse_storage_dtype

    return torch.empty(0, dtype=parse_storage_dtype(getattr(opts, "storage_dtype", "fp16"))).element_size()


def _gb(n: float) -> float:
    return round(n / 1e9, 3)


def estimate(recipe, opts, check_disk: bool = True, timing: bool = True, rates: dict | None = None) -> dict:
    """``_estimate``'s report; when the CPU rates were probed here and ``busy_warning`` finds the
    CPUs busy, one warning (log) after the report is complete, so bad input still gets one line
    only. ``rates``: cpu_flops already probed (``probed_rates``), used instead of probing."""
    busy = busy_warning() if timing and rates is None else None  # the load before the probe's own GEMMs
    report = _estimate(recipe, opts, check_disk, timing, rates)
    if busy:
        log.warning(busy)
    return report


def _estimate(recipe, opts, check_disk: bool, timing: bool, rates: dict | None = None) -> dict:
    """The dry-run report of running ``recipe`` with ``opts``: per pass the estimated peak host
    RAM, device memory and seconds, plus the output's disk need and the free space there
    (ConfigError when it is short, unless not ``check_disk``). Without ``timing`` no FLOP rate is
    probed (seconds then assume NOMINAL_FLOPS): a run that follows in the same process must not
    be preceded by the probe's GEMMs (with them, `andactl quantize smollm2-135m` wrote one of three
    different artifacts at 2 threads; stop 38, docs/local-2026-12-05i/nondeterminism.md)."""
    from andactl.manager import PassManager
    from andactl.models.loading import parse_device, parse_dtype
    from andactl.passes.pca import sliced_dim
    from andactl.pipeline import calibration_config

    manager = PassManager.from_recipe(recipe.passes)  # validates pass names and parameters
    cal = calibration_config(recipe.calibration or {})
    dtype = parse_dtype(opts.dtype)
    device = parse_device(opts.device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    shape = model_shape(opts.model)
    b = torch.empty(0, dtype=dtype).element_size()
    P, D, S = shape.parameters, shape.hidden, cal.seqlen
    B = min(cal.batch_size, cal.samples)
    N = math.ceil(cal.samples / world) * S  # calibration tokens held by one rank
    cal_bytes = N * D * b  # the calibration residual in the run dtype
    cal_host = 0 if getattr(opts, "spill_activations", False) else cal_bytes  # spilled: on disk instead
    model_bytes = P * b
    act_batch = B * S * (4 * D + 2 * shape.widest) * 4 + B * shape.heads * S * S * 4
    on_gpu = device.type == "cuda"
    probe_here = timing and rates is None and not on_gpu  # rates probed in this process: it runs nothing after
    rates = rates or (cpu_flops(dtype) if timing else dict(NOMINAL_FLOPS))
    flops = GPU_FLOPS if on_gpu else rates["run"]
    fwd_flops = 2.0 * P * cal.samples * S / world  # one forward over this rank's calibration share
    head = shape.vocab * D

    def row(name: str, work: int, seconds: float) -> dict:
        host = BASE_RSS + (0 if on_gpu else model_bytes) + (0 if on_gpu else work)
        dev = (model_bytes + work) if on_gpu else 0
        return {"pass": name, "host_ram_gb": _gb(host), "device_gb": _gb(dev), "seconds": round(seconds, 1)}

    band = 2 * CHUNK_ELEMENTS * 8
    if getattr(opts, "stream", False):
        return _streamed(opts, manager, shape, cal, b, N, act_batch, fwd_flops, flops, rates, on_gpu, device, world,
                         cal_host, check_disk)
    # loading: the source's weight files stay mapped, their pages resident, while the model is copied
    # out of them (a Qwen3-0.6B-shaped bf16 folder loaded in float32 peaks at 3.98 GB = base + model +
    # file, in bfloat16 at 2.42 GB; a 3B one in float32 at 18.87 GB; docs/MEMORY.md)
    rows = [row("load", 0 if on_gpu else shape.weights_on_disk, shape.weights_on_disk / DISK_BYTES_PER_SECOND + 2.0)]
    sample_s, sample_bytes = calibration_sampling(shape, cal, b, flops)
    if sample_s:  # before any pass: the text is sampled from the model as loaded
        rows.append(row("sample calibration", sample_bytes, sample_s))
    out_params, out_b = P, _storage_bytes(opts)  # unquantized tensors are written in the storage dtype
    for step in manager.resolved_recipe():
        name = step["pass"]
        if name == "fuse_norms":
            rows.append(row(name, head * b + band, 3 * P * 8 / 1e9 + 0.5))
        elif name == "rotate":
            work = ROTATE_EXTRA * model_bytes + cal_host + act_batch + 4 * D * D * 8 + band
            eig = (2 * shape.layers + 1) * EIGH_FLOPS_PER_D3 * D**3
            rot = 2.0 * P * D  # every weight multiplied by a D x D basis in float64
            seconds = fwd_flops / flops + (eig + rot) / rates["float64"]
            if step.get("basis") == "fisher":  # a backward pass first, every layer's activations kept
                one_row = S * (4 * D + 2 * shape.widest) * 4 + shape.heads * S * S * 4
                work = max(work, shape.layers * one_row + 3 * S * shape.vocab * 4)  # one sequence at a time
                cut = D - sliced_dim(D, float(step.get("ratio", 0.0)), int(step.get("round_to", 8)))
                search = (2 * shape.layers + 1) * fisher_search_seconds(D, cut, rates, probe_here)
                seconds += FISHER_PASSES * fwd_flops / flops + search
            rows.append(row(name, work, seconds))
            out_params = planned_parameters(shape, step)
        elif name == "slice":
            rows.append(row(name, out_params * b, 1.0 + P * b / 2e9))
        elif name == "prune_mlp":
            rows.append(row(name, act_batch, fwd_flops / flops))
            out_params -= pruned_neurons(shape, step) * shape.layers * shape.neuron_params
        elif name == "quantize_weights":
            gptq = step.get("method") == "gptq"
            int4 = int((P - shape.resident_params) * INT4_UNPACKED_BYTES_PER_WEIGHT)  # ctx.int4_weights (uint8 codes) until pack
            work = int4 + ((cal_host + act_batch + gptq_work_bytes(shape)) if gptq else GPTQ_WEIGHT_COPIES * shape.largest_group * 4)
            secs = (2 * fwd_flops / flops + GPTQ_FLOPS_PER_WEIGHT_K * P * shape.largest_k / rates["float32"]) if gptq else P * 20 / 1e9
            rows.append(row(name, work, secs))
            out_b = int4_bytes_per_weight(step)  # the linears dominate
        elif name in ("sensitivity", "anda_search"):
            evals = 40 if name == "sensitivity" else int(step.get("max_evals", 32))
            rows.append(row(name, N * shape.vocab * 4 // max(1, cal.samples) * B + act_batch, evals * fwd_flops / flops))  # one calibration forward per evaluation
        elif name == "pack":
            rows.append(row(name, GPTQ_WEIGHT_COPIES * shape.largest_group * 4, 1.0))
        elif name == "quantize_tables":
            rows.append(row(name, TABLE_COPIES * shape.vocab * D * b, 3 * shape.vocab * D * 20 / 1e9))
        elif name in ("set_anda_bits", "keep_activations"):  # no forward, no layer touched
            rows.append(row(name, 0, 0.0))
        elif name == "recover":
            train_flops = forward_only = flops
            if not on_gpu and rates.get("autocast"):  # probed where training runs under bf16 autocast
                train_share, forward_share = autocast_shares()
                train_flops, forward_only = train_share * rates["autocast"], forward_share * rates["autocast"]
            rows.extend(recover_rows(step, shape, out_params, b, teacher_shape(step, opts), train_flops, on_gpu,
                                     forward_only, flops))
        else:
            rows.append(row(name, act_batch, fwd_flops / flops))
    out_bytes = int(out_params * out_b) + 20 * 2**20  # weights + tokenizer/config/report
    rows.append(row("write", WRITE_EXTRA * out_bytes, out_bytes / DISK_BYTES_PER_SECOND + 1.0))
    free = _free_disk(opts.output)
    result = {
        "model": opts.model, "model_type": shape.model_type, "parameters": P, "output_parameters": out_params,
        "dtype": opts.dtype,
        "device": str(device), "world_size": world, "calibration_tokens_per_rank": N,
        "model_bytes_run_dtype_gb": _gb(model_bytes), "weights_on_disk_gb": _gb(shape.weights_on_disk),
        "passes": rows,
        "peak_host_ram_gb": max(r["host_ram_gb"] for r in rows), "peak_device_gb": max(r["device_gb"] for r in rows),
        "disk_gb": _gb(out_bytes), "free_disk_gb": _gb(free) if free is not None else None,
        "seconds": round(sum(r["seconds"] for r in rows), 1), "shape": _shape_fields(shape),
        "calibration_gb": _gb(cal_bytes), "activations_spilled": cal_host == 0,
        "cpu_flop_rates": {k: float(f"{v:.3g}") for k, v in rates.items()}, "rates_probed": timing,
    }
    spilled = cal_bytes - cal_host
    if check_disk and free is not None and out_bytes + spilled > free:
        what = f" (spilled calibration activations {_gb(spilled)} GB + artifact {_gb(out_bytes)} GB)" if spilled else ""
        raise ConfigError(f"output needs about {_gb(out_bytes + spilled)} GB on disk{what} and only {_gb(free)} GB is free at {opts.output}")
    return result


def layer_need_bytes(shape: ModelShape, b: int) -> int:
    """Host bytes a streamed run needs besides the calibration: the base, the resident modules
    (embeddings, an untied head) and STREAM_LAYER_COPIES copies of the largest layer."""
    resident = shape.resident_params + shape.vocab * shape.hidden  # the head is untied by fuse_norms
    return BASE_RSS + resident * b + STREAM_LAYER_COPIES * shape.layer_params * b + 2 * CHUNK_ELEMENTS * 8


def _streamed(opts, manager, shape: ModelShape, cal, b: int, N: int, act_batch: int, fwd_flops: float, flops: float,
              rates: dict,
              on_gpu: bool, device, world: int, cal_host: int, check_disk: bool = True) -> dict:
    """The dry-run report of a layer-wise streamed run (``--stream``; andactl/models/layer_store.py):

        stream_base = BASE + (R + V*D)*b + STREAM_LAYER_COPIES*L*b + 2*C*8
        fuse, slice = stream_base
        rotate      = stream_base + N*D*b + B*S*(4*D + 2*I)*4 + B*H*S*S*4 + 4*D*D*8
        write       = stream_base + L_max*4

    ``R`` = parameters outside the decoder layers, ``L`` = parameters of the largest layer; with
    ``--device cuda`` the layer and the working set are device memory. Disk: the spill files (one
    copy of the model in the run dtype) plus the artifact."""
    D = shape.hidden
    base = layer_need_bytes(shape, b)
    layer = STREAM_LAYER_COPIES * shape.layer_params * b
    P = shape.parameters

    def row(name: str, work: int, seconds: float) -> dict:
        host = base + (0 if on_gpu else work) - (layer if on_gpu else 0)
        dev = (layer + work) if on_gpu else 0
        return {"pass": name, "host_ram_gb": _gb(host), "device_gb": _gb(dev), "seconds": round(seconds, 1)}

    spill_write = P * b / DISK_BYTES_PER_SECOND
    rows = [row("load", 0, 2.0 + shape.resident_params * b / DISK_BYTES_PER_SECOND)]
    out_params, out_b = P, _storage_bytes(opts)  # unquantized tensors are written in the storage dtype
    for step in manager.resolved_recipe():
        name = step["pass"]
        if name == "fuse_norms":
            rows.append(row(name, 0, 3 * P * 8 / 1e9 + 0.5 + 2 * spill_write))
        elif name == "rotate":
            eig = (2 * shape.layers + 1) * EIGH_FLOPS_PER_D3 * D**3
            rows.append(row(name, cal_host + act_batch + 4 * D * D * 8,
                            fwd_flops / flops + (eig + 2.0 * P * D) / rates["float64"] + 2 * spill_write))
            out_params = planned_parameters(shape, step)
        elif name == "slice":
            rows.append(row(name, 0, 1.0 + 2 * spill_write))
        elif name == "quantize_weights":
            gptq = step.get("method") == "gptq"
            # ctx.int4_weights live in the spill directory (andactl/models/int4_spill.py), not in RAM
            work = (cal_host + act_batch + gptq_work_bytes(shape)) if gptq else GPTQ_WEIGHT_COPIES * shape.largest_group * 4
            secs = (2 * fwd_flops / flops + GPTQ_FLOPS_PER_WEIGHT_K * P * shape.largest_k / rates["float32"]) if gptq else P * 20 / 1e9
            rows.append(row(name, work, secs + 2 * spill_write))
            out_b = int4_bytes_per_weight(step)
        elif name == "pack":
            rows.append(row(name, GPTQ_WEIGHT_COPIES * shape.largest_group * 4, 1.0 + 2 * spill_write))
        elif name == "quantize_tables":
            rows.append(row(name, TABLE_COPIES * shape.vocab * D * b, 3 * shape.vocab * D * 20 / 1e9))
        else:  # passes that touch no layer (set_anda_bits, keep_activations)
            rows.append(row(name, 0, 0.0))
    out_bytes = int(out_params * out_b) + 20 * 2**20
    rows.append(row("write", shape.largest_linear * 4, out_bytes / DISK_BYTES_PER_SECOND + 1.0))
    spill_bytes = P * b + (N * D * b - cal_host)  # spilled layers (+ spilled calibration activations)
    if any(step["pass"] == "quantize_weights" for step in manager.resolved_recipe()):
        spill_bytes += int((P - shape.resident_params) * INT4_UNPACKED_BYTES_PER_WEIGHT)  # int4-*.safetensors until pack
    free = _free_disk(opts.output)
    result = {
        "model": opts.model, "model_type": shape.model_type, "parameters": P, "output_parameters": out_params,
        "dtype": opts.dtype,
        "device": str(device), "world_size": world, "calibration_tokens_per_rank": N, "streamed": True,
        "model_bytes_run_dtype_gb": _gb(P * b), "weights_on_disk_gb": _gb(shape.weights_on_disk),
        "layer_gb": _gb(shape.layer_params * b), "passes": rows,
        "peak_host_ram_gb": max(r["host_ram_gb"] for r in rows), "peak_device_gb": max(r["device_gb"] for r in rows),
        "disk_gb": _gb(out_bytes), "spill_gb": _gb(spill_bytes), "free_disk_gb": _gb(free) if free is not None else None,
        "seconds": round(sum(r["seconds"] for r in rows), 1), "shape": _shape_fields(shape),
        "cpu_flop_rates": {k: float(f"{v:.3g}") for k, v in rates.items()},
        "calibration_gb": _gb(N * D * b), "activations_spilled": cal_host == 0,
    }
    if check_disk and free is not None and out_bytes + spill_bytes > free:
        raise ConfigError(f"a streamed run needs about {_gb(out_bytes + spill_bytes)} GB on disk (spilled layers "
                          f"and activations {_gb(spill_bytes)} GB + artifact {_gb(out_bytes)} GB) and only {_gb(free)} GB is free at {opts.output}")
    return result


def check_max_memory(report: dict, max_memory_gb: float) -> None:
    """ConfigError naming the estimated need and the pass that needs it when the estimated peak
    host RAM exceeds ``max_memory_gb``."""
    worst = max(report["passes"], key=lambda r: r["host_ram_gb"])
    if worst["host_ram_gb"] <= max_memory_gb:
        return
    if report.get("streamed"):
        raise ConfigError(f"--max-memory {max_memory_gb:g} GB is below what a layer-wise streamed run needs: "
                          f"{worst['host_ram_gb']:.2f} GB in pass '{worst['pass']}' (one layer {report['layer_gb']:.2f} GB "
                          "+ embeddings/head + calibration; see --dry-run --stream)")
    hint = worst.get("hint", "--stream reads one layer at a time where the passes allow it")
    raise ConfigError(f"--max-memory {max_memory_gb:g} GB is below the estimated peak host RAM of this run: "
                      f"{worst['host_ram_gb']:.2f} GB in pass '{worst['pass']}' (see --dry-run; {hint})")


def over_memory_warning(recipe, opts) -> str | None:
    """A one-line warning when this run's estimated peak host RAM exceeds the RAM the kernel
    reports available (MemAvailable), with the cheaper way where the estimate knows one; None
    when it fits or cannot be estimated. Reads no weights."""
    try:
        report = estimate(recipe, opts, check_disk=False, timing=False)
    except (ConfigError, ModelError):
        return None
    available = default_max_memory_gb() / STREAM_RAM_SHARE
    worst = max(report["passes"], key=lambda r: r["host_ram_gb"])
    if worst["host_ram_gb"] <= available:
        return None
    hint = f"; {worst['hint']}" if "hint" in worst else ""
    return (f"estimated peak host RAM {worst['host_ram_gb']:.2f} GB (pass '{worst['pass']}') exceeds the "
            f"{available:.2f} GB available: the run may be killed{hint} (see --dry-run)")


def default_max_memory_gb() -> float:
    """The memory a run may use when --max-memory is not given: STREAM_RAM_SHARE of the RAM the
    kernel reports available (MemAvailable), read at run time."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return STREAM_RAM_SHARE * int(line.split()[1]) * 1024 / 1e9
    except (OSError, ValueError, IndexError):
        pass
    return float("inf")


def can_stream(recipe, opts) -> bool:
    """Whether ``recipe`` on ``opts`` could run layer-wise streamed (every pass streams, an output
    to spill next to, a local HF folder / GGUF / alias source, calibration text not sampled from
    the model); reads no weights."""
    from andactl.manager import PassManager
    from andactl.models.loading import streamable_source

    if samples_model((recipe.calibration or {}).get("dataset", "")):
        return False  # sampling calibration text needs the whole model
    passes = PassManager.from_recipe(recipe.passes, []).passes
    return bool(passes) and all(p.streams for p in passes) and opts.output is not None and streamable_source(opts.model)


def plan_memory(recipe, opts, max_memory: float | None, wanted: bool) -> dict | None:
    """Decides ``opts.stream`` when it is None (streamed when the in-memory estimate exceeds
    ``max_memory``, default ``default_max_memory_gb()``, and the run can stream) and
    ``opts.spill_activations`` when it is None (spilled when the run still exceeds that limit and
    would fit with its calibration activations on disk), then returns the
    estimate of the run as it will happen (None when not ``wanted`` and no estimate was needed);
    ConfigError when the estimate exceeds an explicit ``max_memory``. Reads no weights."""
    limit = max_memory if max_memory is not None else default_max_memory_gb()
    switched = None
    if opts.stream is None:
        opts.stream = False
        if can_stream(recipe, opts):
            peak = estimate(recipe, opts, check_disk=False, timing=False)["peak_host_ram_gb"]
            if peak > limit:
                switched, opts.stream = peak, True
    if getattr(opts, "spill_activations", False) is None:  # spill the calibration only when it is what does not fit
        opts.spill_activations = False
        if opts.output is not None and (opts.model in _aliases() or Path(opts.model).expanduser().exists()):
            report = estimate(recipe, opts, check_disk=False, timing=False)
            peak = report["peak_host_ram_gb"]
            opts.spill_activations = bool(peak > limit and peak - report["calibration_gb"] <= limit)
    if not (wanted or max_memory is not None or opts.stream or opts.spill_activations):
        return None  # an in-memory run nobody asked to check: preflight checks the disk
    # the run as it will happen (ConfigError when the disk is short); rates probed only for a dry run
    report = estimate(recipe, opts, timing=wanted, rates=getattr(opts, "cpu_rates", None) if wanted else None)
    if max_memory is not None:
        check_max_memory(report, max_memory)
    if switched is not None and not wanted:
        log.info("estimated peak host RAM %.2f GB (in memory) exceeds %.2f GB: streaming layer by layer", switched, limit)
    return report


def _aliases() -> dict:
    from andactl.models.loading import ALIASES

    return ALIASES


def _free_disk(output: str | None) -> int | None:
    if not output:
        return None
    p = Path(output).expanduser().resolve()
    while not p.exists():
        p = p.parent
    return shutil.disk_usage(p).free


def human(report: dict) -> None:
    """The dry-run report as a table on stdout."""
    from rich.table import Table

    from andactl.cli.common import stdout_console

    t = Table(title=f"andactl --dry-run: {report['model']} ({report['model_type']}, {report['parameters'] / 1e6:.1f}M "
                    f"parameters, {report['dtype']}, {report['device']}, world {report['world_size']})")
    for col in ("pass", "host RAM GB", "device GB", "seconds"):
        t.add_column(col, justify="right")
    for r in report["passes"]:
        t.add_row(r["pass"], f"{r['host_ram_gb']:.2f}", f"{r['device_gb']:.2f}", f"{r['seconds']:.1f}")
    c = stdout_console()
    c.print(t)
    c.print(f"peak host RAM {report['peak_host_ram_gb']:.2f} GB, peak device {report['peak_device_gb']:.2f} GB, "
            f"output {report['output_parameters'] / 1e6:.1f}M parameters, {report['disk_gb']:.2f} GB on disk "
            f"(free {report['free_disk_gb']}), about {report['seconds']:.0f} s")
    if any(r["pass"] in ("anda_search", "sensitivity") for r in report["passes"]):
        c.print("anda_search / sensitivity: every allowed evaluation counted (--max-evals); a search usually stops "
                "earlier (SmolLM2 default: 13 of 32)")
    if report.get("streamed"):
        c.print(f"layer-wise streamed: largest layer {report['layer_gb']:.2f} GB, spilled layers {report['spill_gb']:.2f} GB "
                "on disk next to the output")


def to_json(report: dict) -> str:
    return json.dumps(report, indent=2)
