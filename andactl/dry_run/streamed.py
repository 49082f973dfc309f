"""The dry-run report of a layer-wise streamed run (``--stream``; andactl/models/layer_store.py)."""
from __future__ import annotations

from andactl.dry_run import costs
from andactl.dry_run.costs import (BASE_RSS, DISK_BYTES_PER_SECOND, EIGH_FLOPS_PER_D3, GPTQ_WEIGHT_COPIES,
                                   INT4_UNPACKED_BYTES_PER_WEIGHT, TABLE_COPIES, gb, int4_bytes_per_weight,
                                   storage_bytes)
from andactl.dry_run.report import RunFigures, artifact_bytes, quantize_weights_cost, report_fields
from andactl.dry_run.shape import ModelShape, planned_parameters
from andactl.errors import ConfigError
from andactl.passes.blockwise import CHUNK_ELEMENTS

STREAM_LAYER_COPIES = 2  # a streamed layer: its tensors + the read/spill copy in flight


def layer_need_bytes(shape: ModelShape, b: int) -> int:
    """Host bytes a streamed run needs besides the calibration: the base, the resident modules
    (embeddings, an untied head) and STREAM_LAYER_COPIES copies of the largest layer."""
    resident = shape.resident_params + shape.vocab * shape.hidden  # the head is untied by fuse_norms
    return BASE_RSS + resident * b + STREAM_LAYER_COPIES * shape.layer_params * b + 2 * CHUNK_ELEMENTS * 8


def streamed_estimate(run: RunFigures, manager, check_disk: bool = True) -> dict:
    """The dry-run report of a layer-wise streamed run (``--stream``; andactl/models/layer_store.py):

        stream_base = BASE + (R + V*D)*b + STREAM_LAYER_COPIES*L*b + 2*C*8
        fuse, slice = stream_base
        rotate      = stream_base + N*D*b + B*S*(4*D + 2*I)*4 + A + 4*D*D*8  (A: costs.attention_bytes)
        write       = stream_base + L_max*4

    ``R`` = parameters outside the decoder layers, ``L`` = parameters of the largest layer; with
    ``--device cuda`` the layer and the working set are device memory. Disk: the spill files (one
    copy of the model in the run dtype) plus the artifact."""
    opts, shape, b, rates, flops, fwd_flops = run.opts, run.shape, run.b, run.rates, run.flops, run.fwd_flops
    on_gpu, cal_host = run.on_gpu, run.cal_host
    D = shape.hidden
    base = layer_need_bytes(shape, b)
    layer = STREAM_LAYER_COPIES * shape.layer_params * b
    P = shape.parameters

    def row(name: str, work: int, seconds: float) -> dict:
        host = base + (0 if on_gpu else work) - (layer if on_gpu else 0)
        dev = (layer + work) if on_gpu else 0
        return {"pass": name, "host_ram_gb": gb(host), "device_gb": gb(dev), "seconds": round(seconds, 1)}

    spill_write = P * b / DISK_BYTES_PER_SECOND
    rows = [row("load", 0, 2.0 + shape.resident_params * b / DISK_BYTES_PER_SECOND)]
    out_params, out_b = P, storage_bytes(opts)  # unquantized tensors are written in the storage dtype
    for step in manager.resolved_recipe():
        name = step["pass"]
        if name == "fuse_norms":
            rows.append(row(name, 0, 3 * P * 8 / 1e9 + 0.5 + 2 * spill_write))
        elif name == "rotate":
            eig = (2 * shape.layers + 1) * EIGH_FLOPS_PER_D3 * D**3
            rows.append(row(name, cal_host + run.act_batch + 4 * D * D * 8,
                            fwd_flops / flops + (eig + 2.0 * P * D) / rates["float64"] + 2 * spill_write))
            out_params = planned_parameters(shape, step)
        elif name == "slice":
            rows.append(row(name, 0, 1.0 + 2 * spill_write))
        elif name == "quantize_weights":
            # ctx.int4_weights live in the spill directory (andactl/models/int4_spill.py), not in RAM
            work, seconds = quantize_weights_cost(run, step)
            rows.append(row(name, work, seconds + 2 * spill_write))
            out_b = int4_bytes_per_weight(step)
        elif name == "pack":
            rows.append(row(name, GPTQ_WEIGHT_COPIES * shape.largest_group * 4, 1.0 + 2 * spill_write))
        elif name == "quantize_tables":
            rows.append(row(name, TABLE_COPIES * shape.vocab * D * b, 3 * shape.vocab * D * 20 / 1e9))
        else:  # passes that touch no layer (set_anda_bits, keep_activations)
            rows.append(row(name, 0, 0.0))
    out_bytes = artifact_bytes(out_params, out_b)
    rows.append(row("write", shape.largest_linear * 4, out_bytes / DISK_BYTES_PER_SECOND + 1.0))
    spill_bytes = P * b + (run.cal_bytes - cal_host)  # spilled layers (+ spilled calibration activations)
    if any(step["pass"] == "quantize_weights" for step in manager.resolved_recipe()):
        spill_bytes += int((P - shape.resident_params) * INT4_UNPACKED_BYTES_PER_WEIGHT)  # int4-*.safetensors until pack
    free = costs.free_disk(opts.output)
    result = {**report_fields(run, rows, out_params, out_bytes, free), "streamed": True,
              "layer_gb": gb(shape.layer_params * b), "spill_gb": gb(spill_bytes)}
    if check_disk and free is not None and out_bytes + spill_bytes > free:
        raise ConfigError(f"a streamed run needs about {gb(out_bytes + spill_bytes)} GB on disk (spilled layers "
                          f"and activations {gb(spill_bytes)} GB + artifact {gb(out_bytes)} GB) and only {gb(free)} GB is free at {opts.output}")
    return result
