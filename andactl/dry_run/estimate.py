"""``--dry-run``'s report: peak host RAM, device memory, disk and time per pass, from the config alone.

No weight is read: the model's shapes come from its ``config.json`` (or a GGUF header), the
module tree is built on torch's ``meta`` device (an artifact's structure records are replayed on
it, so sliced widths are exact), and sizes on disk come from ``stat``. The formulas are in
docs/MEMORY.md; the constants live in this package's modules.

Memory model of the current (whole-model, in-memory) pipeline, bytes, ``b`` = bytes per element
of the run dtype, ``P`` = parameters, ``P_out`` = parameters written, ``N`` = calibration tokens
held by one rank, ``D`` = hidden, ``I`` = widest linear output, ``H`` = heads, ``V`` = vocab,
``K_max`` = widest linear input, ``L_max`` = elements of the largest matrix, ``C`` = one float64
band of ``passes/blockwise.py``, ``A`` = one batch's attention beside its activations (``costs.attention_bytes``:
``B*S*S`` under sdpa, ``B*H*S*S*4`` eager):

    resident = BASE_RSS + P*b                  (interpreter + libraries; the model, memory-mapped)
    fuse     = resident + V*D*b + 2*C*8        (untied head; one float64 band)
    rotate   = resident + ROTATE_EXTRA*P*b + N*D*b + B*S*(4*D + 2*I)*4 + A + 4*D*D*8
               (basis fisher: at least resident + L*(S*(4*D + 2*I)*4 + H*S*S*4) + 3*S*V*4, one sequence's
                backward with every layer's activations kept; seconds + 3 forwards + the subspace search)
    slice    = resident + P_out*b              (cut copies while the source mapping is alive)
    gptq     = resident + N*D*b + B*S*(4*D + 2*I)*4 + K_max^2*8 + 4*G_max*4 + P_lin*INT4
               (G_max = elements of the largest stack of linears sharing one input, e.g. gate+up;
                one float64 [K, K] matrix factored in place: passes/gptq.py;
                uint8 INT4 codes until pack, on disk when streamed)
    search   = resident + B*S*V*4 + B*S*(4*D + 2*I)*4 + A + P_lin*INT4
               (anda_search / sensitivity: one batch's float32 logits for the reference cross-entropy;
                the INT4 codes stay until pack, in set_anda_bits and pack too)
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

import torch

from andactl.dry_run import costs
from andactl.dry_run import rates as rate_probe
from andactl.dry_run.costs import (BASE_RSS, DISK_BYTES_PER_SECOND, EIGH_FLOPS_PER_D3, GPTQ_FLOPS_PER_WEIGHT_K,
                                   GPTQ_WEIGHT_COPIES, INT4_UNPACKED_BYTES_PER_WEIGHT, TABLE_COPIES, TABLE_GPTQ_COPIES,
                                   gb, int4_bytes_per_weight, storage_bytes)
from andactl.dry_run.recover import recover_rows, teacher_shape
from andactl.dry_run.report import RunFigures, artifact_bytes, quantize_weights_cost, report_fields
from andactl.dry_run.sampling import calibration_sampling
from andactl.dry_run.shape import model_shape, planned_parameters, pruned_neurons
from andactl.dry_run.streamed import streamed_estimate
from andactl.errors import ConfigError
from andactl.passes.blockwise import CHUNK_ELEMENTS

log = logging.getLogger("andactl")

FISHER_PASSES = 3  # rotate basis fisher: a forward and a backward (twice its FLOPs) before the PCA sweep
ROTATE_EXTRA = 0.6  # rotation rewrites every page of the mapped model plus allocator retention (fitted)
WRITE_EXTRA = 1.2  # the sliced copies + one tensor in flight of the streaming writer (fitted)


def estimate(recipe, opts, check_disk: bool = True, timing: bool = True, rates: dict | None = None) -> dict:
    """``_estimate``'s report; when the CPU rates were probed here and ``busy_warning`` finds the
    CPUs busy, one warning (log) after the report is complete, so bad input still gets one line
    only. ``rates``: cpu_flops already probed (``probed_rates``), used instead of probing."""
    busy = rate_probe.busy_warning() if timing and rates is None else None  # the load before the probe's own GEMMs
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
    on_gpu = device.type == "cuda"
    probe_here = timing and rates is None and not on_gpu  # rates probed in this process: it runs nothing after
    rates = rates or (rate_probe.cpu_flops(dtype) if timing else dict(rate_probe.NOMINAL_FLOPS))
    run = RunFigures(opts=opts, shape=shape, device=device, world=world, b=b, N=N, cal_bytes=cal_bytes,
                     cal_host=cal_host, act_batch=B * S * (4 * D + 2 * shape.widest) * 4 + costs.attention_bytes(shape, B, S),
                     fwd_flops=2.0 * P * cal.samples * S / world,  # one forward over this rank's calibration share
                     flops=rate_probe.GPU_FLOPS if on_gpu else rates["run"], rates=rates, timing=timing)
    if getattr(opts, "stream", False):
        return streamed_estimate(run, manager, check_disk)
    return _in_memory_estimate(run, manager, cal, check_disk, probe_here)


def _in_memory_estimate(run: RunFigures, manager, cal, check_disk: bool, probe_here: bool) -> dict:
    """``_estimate`` of a whole-model run (the memory model in this module's docstring)."""
    from andactl.passes.pca import sliced_dim

    opts, shape, b, rates, flops, fwd_flops = run.opts, run.shape, run.b, run.rates, run.flops, run.fwd_flops
    P, D, S = shape.parameters, shape.hidden, cal.seqlen
    B = min(cal.batch_size, cal.samples)
    model_bytes = P * b
    head = shape.vocab * D

    def row(name: str, work: int, seconds: float) -> dict:
        host = BASE_RSS + (0 if run.on_gpu else model_bytes) + (0 if run.on_gpu else work)
        dev = (model_bytes + work) if run.on_gpu else 0
        return {"pass": name, "host_ram_gb": gb(host), "device_gb": gb(dev), "seconds": round(seconds, 1)}

    band = 2 * CHUNK_ELEMENTS * 8
    # loading: the source's weight files stay mapped, their pages resident, while the model is copied
    # out of them (a Qwen3-0.6B-shaped bf16 folder loaded in float32 peaks at 3.98 GB = base + model +
    # file, in bfloat16 at 2.42 GB; a 3B one in float32 at 18.87 GB; docs/MEMORY.md)
    rows = [row("load", 0 if run.on_gpu else shape.weights_on_disk, shape.weights_on_disk / DISK_BYTES_PER_SECOND + 2.0)]
    sample_s, sample_bytes = calibration_sampling(shape, cal, b, flops)
    if sample_s:  # before any pass: the text is sampled from the model as loaded
        rows.append(row("sample calibration", sample_bytes, sample_s))
    out_params, out_b = P, storage_bytes(opts)  # unquantized tensors are written in the storage dtype
    int4_live = 0  # ctx.int4_weights (uint8 codes) from quantize_weights until pack: alive in every pass between
    for step in manager.resolved_recipe():
        name = step["pass"]
        if name == "fuse_norms":
            rows.append(row(name, head * b + band, 3 * P * 8 / 1e9 + 0.5))
        elif name == "rotate":
            work = ROTATE_EXTRA * model_bytes + run.cal_host + run.act_batch + 4 * D * D * 8 + band
            eig = (2 * shape.layers + 1) * EIGH_FLOPS_PER_D3 * D**3
            rot = 2.0 * P * D  # every weight multiplied by a D x D basis in float64
            seconds = fwd_flops / flops + (eig + rot) / rates["float64"]
            if step.get("basis") == "fisher":  # a backward pass first, every layer's activations kept
                one_row = S * (4 * D + 2 * shape.widest) * 4 + shape.heads * S * S * 4
                work = max(work, shape.layers * one_row + 3 * S * shape.vocab * 4)  # one sequence at a time
                cut = D - sliced_dim(D, float(step.get("ratio", 0.0)), int(step.get("round_to", 8)))
                search = (2 * shape.layers + 1) * rate_probe.fisher_search_seconds(D, cut, rates, probe_here)
                seconds += FISHER_PASSES * fwd_flops / flops + search
            rows.append(row(name, work, seconds))
            out_params = planned_parameters(shape, step)
        elif name == "slice":
            rows.append(row(name, out_params * b, 1.0 + P * b / 2e9))
        elif name == "prune_mlp":
            rows.append(row(name, run.act_batch, fwd_flops / flops))
            out_params -= pruned_neurons(shape, step) * shape.layers * shape.neuron_params
        elif name == "quantize_weights":
            work, seconds = quantize_weights_cost(run, step)
            int4_live = int((P - shape.resident_params) * INT4_UNPACKED_BYTES_PER_WEIGHT)
            rows.append(row(name, int4_live + work, seconds))
            out_b = int4_bytes_per_weight(step)  # the linears dominate
        elif name in ("sensitivity", "anda_search"):
            evals = 40 if name == "sensitivity" else int(step.get("max_evals", 32))
            logits = run.N * shape.vocab * 4 // max(1, cal.samples) * B  # one batch's, for the reference cross-entropy
            rows.append(row(name, int4_live + logits + run.act_batch, evals * fwd_flops / flops))  # a calibration forward per evaluation
            if B > 1:
                rows[-1]["hint"] = f"a smaller --cal-batch-size holds fewer sequences' logits at once (now {B})"
        elif name == "pack":
            rows.append(row(name, int4_live + GPTQ_WEIGHT_COPIES * shape.largest_group * 4, 1.0))
            int4_live = 0
        elif name == "quantize_tables" and step.get("method") == "gptq":  # the body's forward, then GPTQ in float32
            body = fwd_flops * (P - shape.resident_params) / P
            rows.append(row(name, TABLE_GPTQ_COPIES * head * 4 + run.act_batch,
                            body / flops + GPTQ_FLOPS_PER_WEIGHT_K * head * D / rates["float32"]))
        elif name == "quantize_tables":
            rows.append(row(name, TABLE_COPIES * head * b, 3 * head * 20 / 1e9))
        elif name in ("set_anda_bits", "keep_activations"):  # no forward, no layer touched
            rows.append(row(name, int4_live, 0.0))
        elif name == "recover":
            train_flops = forward_only = flops
            if not run.on_gpu and rates.get("autocast"):  # probed where training runs under bf16 autocast
                train_share, forward_share = rate_probe.autocast_shares()
                train_flops, forward_only = train_share * rates["autocast"], forward_share * rates["autocast"]
            rows.extend(recover_rows(step, shape, out_params, b, teacher_shape(step, opts), train_flops, run.on_gpu,
                                     forward_only, flops))
        else:
            rows.append(row(name, run.act_batch, fwd_flops / flops))
    out_bytes = artifact_bytes(out_params, out_b)
    rows.append(row("write", WRITE_EXTRA * out_bytes, out_bytes / DISK_BYTES_PER_SECOND + 1.0))
    free = costs.free_disk(opts.output)
    result = report_fields(run, rows, out_params, out_bytes, free)
    spilled = run.cal_bytes - run.cal_host
    if check_disk and free is not None and out_bytes + spilled > free:
        what = f" (spilled calibration activations {gb(spilled)} GB + artifact {gb(out_bytes)} GB)" if spilled else ""
        raise ConfigError(f"output needs about {gb(out_bytes + spilled)} GB on disk{what} and only {gb(free)} GB is free at {opts.output}")
    return result


def human(report: dict) -> None:
    """The dry-run report as a table on stdout."""
    from rich.table import Table

    from andactl.consoles import stdout_console

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
            + ("(free space unknown)" if report["free_disk_gb"] is None else f"({report['free_disk_gb']:.1f} GB free there)")
            + f", about {report['seconds']:.0f} s")
    if any(r["pass"] in ("anda_search", "sensitivity") for r in report["passes"]):
        c.print("anda_search / sensitivity: every allowed evaluation counted (--max-evals); a search usually stops "
                "earlier (SmolLM2 default: 13 of 32)")
    if report.get("streamed"):
        c.print(f"layer-wise streamed: largest layer {report['layer_gb']:.2f} GB, spilled layers {report['spill_gb']:.2f} GB "
                "on disk next to the output")


def to_json(report: dict) -> str:
    return json.dumps(report, indent=2)
