"""The rows of a ``recover`` step: the teacher's phase, sampling its training text, and training
(passes/recover*.py; formulas in docs/MEMORY.md)."""
from __future__ import annotations

from pathlib import Path

from andactl.data.model_text import model_samples, samples_model, sampling_rows
from andactl.dry_run.costs import BASE_RSS, DISK_BYTES_PER_SECOND, MEMORY_BYTES_PER_SECOND, gb
from andactl.dry_run.sampling import sampling_seconds_and_bytes
from andactl.dry_run.shape import ModelShape, model_shape
from andactl.kernels import split_gemm

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
# the top-k phase's selection per teacher logit (torch.topk, the tail's two logsumexps, the copies):
# as long as this many bytes moved at MEMORY_BYTES_PER_SECOND (fitted on stop 52's phase of 42.3 s
# for SmolLM2's 168 x 256 positions of a 49152-wide vocabulary: 13.9 s beside the teacher's load,
# its forward at the forward share and the student parked on disk and read back)
TOPK_BYTES_PER_LOGIT = 130
# what a refusal / warning suggests when the in-process teacher is what does not fit
TOPK_HINT = "recover --teacher-topk 64 never holds the teacher beside the student"


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
        rows.append({"pass": name, "host_ram_gb": gb(host), "device_gb": gb(dev), "seconds": round(teacher_s, 1)})
    n, S = step["steps"] * step["batch_size"] * step["grad_accum"], step["seqlen"]
    own = model_samples(step["train_data"], n) + model_samples(step["train_data"], step["held_out"])
    if teacher and own:  # recover_data.self_text (all of self, half of mix): every sampled row, once
        batch = sampling_rows(teacher.layers, teacher.kv_width, b, S, own)
        sample_s, cache = sampling_seconds_and_bytes(teacher, own, batch, S, b, sample_flops or flops)
        held_now = t_bytes + (0 if sparse else student) + cache
        host, dev = host_dev(held_now, held_now)
        if on_gpu and sparse:
            host += student
        rows.append({"pass": "recover: sample text", "host_ram_gb": gb(host), "device_gb": gb(dev),
                     "seconds": round(sample_s, 1)})
    kept_teacher = t_bytes if teacher and step["method"] == "kd" and not sparse else 0
    host, dev = host_dev(student + kept_teacher + work, student + kept_teacher + work)
    rows.append({"pass": RECOVER_TRAINING_ROW, "host_ram_gb": gb(host), "device_gb": gb(dev),
                 "seconds": round(train_s, 1)})
    if kept_teacher:
        for r in rows:
            r["hint"] = TOPK_HINT
    return rows
