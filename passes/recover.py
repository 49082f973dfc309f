"""Recovery fine-tuning after slicing or pruning: SliceGPT's RFT (LoRA + cross-entropy) or distillation from
the dense model (KL on logits, optionally + CE), LoRA or full linear weights; adapters are merged,
so the result is an ordinary (sliced or pruned) model with the same structure records.

Invariants: the model's module tree, names and shapes are unchanged by the pass; nothing is written
(the pipeline writes the artifact only after every pass succeeded, so Ctrl-C leaves nothing); the
same config and seed give identical weights.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

import torch

from andactl.data.model_text import MIX, samples_model
from andactl.errors import ConfigError
from andactl.instruments import megabytes
from andactl.kernels import split_gemm
from andactl.passbase import QUANTIZED, Pass, PassConfig, check_seed, register_pass
from andactl.passes.recover_loss import HEAD_PRODUCTS

log = logging.getLogger("andactl")

METHODS = ("lora", "kd")
DEFAULT_LR = {"lora": 1e-3, "full": 1e-4}  # short runs: tens of steps, not the paper's epochs


@dataclass
class RecoverConfig(PassConfig):
    """``method``: lora (CE on the text, the paper's RFT) or kd (KL to the teacher + ce_weight·CE);
    ``full``: train the attention/MLP linear weights instead of LoRA adapters; ``teacher``: model
    source (default: the dense model the artifact came from); ``train_data``: dataset[/split] or
    ``self`` (text sampled from the teacher); ``lr``: peak lr (None: 1e-3 LoRA, 1e-4 full);
    ``teacher_topk``: 0 = the teacher's whole distribution, teacher beside the student; K > 0 =
    its K most likely tokens per position (+ the rest's mass), computed before training, teacher
    freed before the student trains; ``head_products``: how the frozen heads multiply in the loss
    (recover_loss.uses_split_heads: auto, split = split_gemm on AMX-BF16 tiles, float32 = torch)."""

    method: str = "kd"
    full: bool = False
    teacher: str | None = None
    train_data: str = "alpaca"
    steps: int = 40
    lr: float | None = None
    seqlen: int = 256
    batch_size: int = 4
    grad_accum: int = 1
    warmup: float = 0.1
    schedule: Literal["cosine", "linear"] = "cosine"
    ce_weight: float = 0.0
    teacher_topk: int = 0
    eval_every: int = 10
    held_out: int = 8
    checkpoint: bool | None = None  # None: recover_train.recomputed_layers decides
    head_products: str = "auto"
    lora_rank: int = 32
    lora_alpha: float = 10.0
    lora_dropout: float = 0.05
    seed: int | None = None

    def validate(self) -> None:
        from andactl.passes.recover_data import parse_train_data

        if self.method not in METHODS:
            raise ConfigError(f"unknown recovery method '{self.method}'; choose one of {', '.join(METHODS)}")
        if self.steps <= 0:
            raise ConfigError(f"recovery steps must be > 0, got {self.steps}")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"recovery lr must be a finite number > 0, got {self.lr}")
        for name in ("seqlen", "batch_size", "grad_accum", "eval_every", "held_out", "lora_rank"):
            if getattr(self, name) < 1:
                raise ConfigError(f"recovery {name} must be >= 1, got {getattr(self, name)}")
        if self.seqlen < 2:
            raise ConfigError(f"recovery seqlen must be >= 2, got {self.seqlen}")
        if not 0 <= self.warmup < 1:
            raise ConfigError(f"recovery warmup is a fraction of the steps in [0, 1), got {self.warmup}")
        if not (math.isfinite(self.ce_weight) and self.ce_weight >= 0 and math.isfinite(self.lora_alpha)
                and self.lora_alpha > 0 and 0 <= self.lora_dropout < 1):
            raise ConfigError(f"recovery ce_weight must be a finite number >= 0, lora_alpha a finite number > 0, "
                              f"lora_dropout in [0, 1); got {self.ce_weight}, {self.lora_alpha}, {self.lora_dropout}")
        if self.teacher_topk < 0:
            raise ConfigError(f"recovery teacher_topk must be >= 0 (0: the whole distribution), "
                              f"got {self.teacher_topk}")
        if self.head_products not in HEAD_PRODUCTS:
            raise ConfigError(f"unknown recovery head_products '{self.head_products}'; choose one of "
                              f"{', '.join(HEAD_PRODUCTS)}")
        if self.head_products == "split" and not split_gemm.tiles_expected():
            raise ConfigError("recovery head_products 'split' needs a CPU with AMX-BF16 tiles; this one has none "
                              "(use auto or float32)")
        if self.teacher_topk and self.method != "kd":
            raise ConfigError(f"teacher_topk is for --method kd (distillation); --method {self.method} has no KL term")
        check_seed(self.seed, "recovery seed")
        parse_train_data(self.train_data)
        if self.train_data == MIX and self.steps * self.batch_size * self.grad_accum < 2:
            raise ConfigError("recovery train_data mix needs at least 2 training sequences (steps x batch_size x "
                              "grad_accum)")

    @property
    def peak_lr(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR["full" if self.full else "lora"]

    @property
    def needs_teacher(self) -> bool:
        return self.method == "kd" or samples_model(self.train_data)


def preflight(config: RecoverConfig, provided: set[str], teacher: str | None) -> None:
    """Checks that need the model's capabilities but not its weights (the CLI calls it before
    loading anything; the pass again before training)."""
    done = sorted(set(provided) & set(QUANTIZED))
    if done:
        raise ConfigError(f"recover works on unquantized models; this one is already quantized ({', '.join(done)}): "
                          "recover before quantize_weights")
    if config.method == "kd" and config.teacher is None and not provided & {"sliced", "pruned"}:
        raise ConfigError("--method kd on a model that was not sliced or pruned needs --teacher (a recipe: teacher:); "
                          "there is no dense source to distil from")
    if config.needs_teacher and not teacher:
        raise ConfigError("no teacher model: pass --teacher")


def train_settings(cfg: RecoverConfig, seed: int, quiet: bool = False):
    """recover_train.TrainSettings of ``cfg`` (the pass's training loop, and recover --minutes's timed steps)."""
    from andactl.passes.recover_train import TrainSettings

    kd = cfg.method == "kd"
    return TrainSettings(
        steps=cfg.steps, lr=cfg.peak_lr, batch_size=cfg.batch_size, grad_accum=cfg.grad_accum,
        warmup=cfg.warmup, schedule=cfg.schedule, kd_weight=1.0 if kd else 0.0,
        ce_weight=cfg.ce_weight if kd else 1.0, eval_every=cfg.eval_every, seed=seed, checkpoint=cfg.checkpoint,
        head_products=cfg.head_products, quiet=quiet)


@register_pass
class Recover(Pass):
    """Recovery fine-tuning (SliceGPT RFT / distillation), adapters merged into the weights."""

    name = "recover"
    Config = RecoverConfig
    requires = ()
    provides = ("recovered",)
    description = "recovery fine-tuning: LoRA RFT or distillation from the dense model, merged"

    def run(self, ctx) -> dict:
        from andactl.passes.recover_lora import attach, merge
        from andactl.passes.recover_plot import plot_recovery
        from andactl.passes.recover_teacher import dense_source
        from andactl.passes.recover_train import Student, autocast_dtype, train

        cfg: RecoverConfig = self.config
        teacher_src = cfg.teacher or (dense_source(ctx.provenance, ctx.report.get("source")) if cfg.needs_teacher else None)
        preflight(cfg, ctx.provided - set(self.provides), teacher_src)
        seed = ctx.seed if cfg.seed is None else cfg.seed
        vocab = ctx.adapter.head().out_features
        if cfg.teacher_topk > vocab:
            raise ConfigError(f"recover teacher_topk {cfg.teacher_topk} exceeds the vocabulary ({vocab} tokens)")
        if cfg.teacher_topk:
            teacher, text = self._sparse_teacher(ctx, teacher_src, cfg, seed)
        else:
            teacher = self._load_teacher(ctx, teacher_src) if cfg.needs_teacher else None
            text = self._text(ctx, cfg, teacher, seed)
            if cfg.method != "kd":
                teacher = None  # sampled the text; LoRA RFT itself needs no teacher
        torch.manual_seed(seed)
        trainable = attach(ctx.model, ctx.adapter, cfg.full, cfg.lora_rank, cfg.lora_alpha, cfg.lora_dropout)
        settings = train_settings(cfg, seed, ctx.quiet)
        try:
            hist = train(Student(ctx.model, ctx.adapter), teacher, trainable.params, text.train.to(ctx.device),
                         text.held_out.to(ctx.device), settings, ctx.device)
        finally:
            ctx.model = merge(ctx.model, trainable)
        history = hist.to_dict()
        topk = f" (teacher top-{cfg.teacher_topk})" if cfg.teacher_topk else ""
        title = f"recover: {cfg.method}{topk}{' full' if cfg.full else ' LoRA'} on {text.source}"
        ctx.attachments["recovery.png"] = plot_recovery(history, title)
        summary = {
            "method": cfg.method, "full": cfg.full, "teacher": teacher_src if cfg.needs_teacher else None,
            "train_data": text.to_dict(), "trainable_parameters": trainable.count, "seed": seed,
            "steps": cfg.steps, "batch_size": cfg.batch_size, "grad_accum": cfg.grad_accum, "schedule": cfg.schedule,
            "lr": cfg.peak_lr, "autocast": str(autocast_dtype(ctx.device) or "float32"),
            "teacher_topk": cfg.teacher_topk,
            "loss": (f"KL over the teacher's top {cfg.teacher_topk} tokens + the rest's mass" if cfg.teacher_topk
                     else "KL(teacher || student)" if cfg.method == "kd" else "cross-entropy")
            + (f" + {cfg.ce_weight} x cross-entropy" if cfg.method == "kd" and cfg.ce_weight else ""),
        }
        ctx.provenance["recovery"] = summary
        return {**summary, "held_out_before": history["held_out"][0]["loss"],
                "held_out_after": history["held_out"][-1]["loss"], "history": history}

    @staticmethod
    def _load_teacher(ctx, source: str):
        from andactl.passes.recover_teacher import load_teacher

        return load_teacher(source, ctx.dtype, ctx.device, ctx.tokenizer)

    @classmethod
    def _sparse_teacher(cls, ctx, source: str, cfg: RecoverConfig, seed: int):
        """(top-k targets, training text): the student parked out of memory, the teacher loaded,
        the text built (sampled from the teacher for ``self``), the targets of the training rows
        computed under training's autocast and those of the held-out rows without (as the
        in-process teacher runs), the teacher freed, the student restored. Teacher and student
        never share memory, so the peak is the larger of the two phases, not their sum."""
        import gc
        import time

        from andactl.models.layer_store import return_freed_memory, trim_heap
        from andactl.passes.recover_topk import SparseTeacher, parked, teacher_splits, teacher_targets
        from andactl.passes.recover_train import autocast_dtype

        t0 = time.perf_counter()
        k, amp = cfg.teacher_topk, autocast_dtype(ctx.device)
        return_freed_memory()  # the freed teacher goes back to the OS, not into a heap the student cannot reuse
        with parked(ctx.model, ctx.device):
            teacher = cls._load_teacher(ctx, source)
            text = cls._text(ctx, cfg, teacher, seed)
            rows, order = text.unique_rows()  # repeated text: each distinct sequence's targets once
            splits = teacher_splits(teacher, cfg.head_products, ctx.device)  # packed once for both calls
            train = teacher_targets(teacher, rows, k, cfg.batch_size, amp, ctx.device, splits)
            train.index = order
            held = teacher_targets(teacher, text.held_out, k, cfg.batch_size, None, ctx.device, splits)
            del teacher, splits
            gc.collect()
            trim_heap()
        log.info("recover: teacher top-%d targets of %d sequences in %.1f s (%.1f MB), teacher freed",
                 k, rows.shape[0] + text.held_out.shape[0], time.perf_counter() - t0,
                 megabytes(train.nbytes + held.nbytes))
        return SparseTeacher(train, held), text

    @staticmethod
    def _text(ctx, cfg: RecoverConfig, teacher, seed: int):
        from andactl.data.model_text import model_vocab
        from andactl.passes.recover_data import dataset_text, mixed_text, self_text

        count = cfg.steps * cfg.batch_size * cfg.grad_accum
        if samples_model(cfg.train_data):
            vocab = model_vocab(teacher.model, ctx.tokenizer)
            if cfg.train_data == MIX:
                return mixed_text(teacher.model, vocab, ctx.tokenizer, count, cfg.held_out, cfg.seqlen, seed,
                                  ctx.data_dir, ctx.device)
            return self_text(teacher.model, vocab, count, cfg.held_out, cfg.seqlen, seed, ctx.device)
        return dataset_text(cfg.train_data, ctx.tokenizer, count, cfg.held_out, cfg.seqlen, seed, ctx.data_dir)
