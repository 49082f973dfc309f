"""Which weights recovery trains: peft LoRA adapters on the attention and MLP linears (merged back
into the weights before save), or the linear weights themselves (``--full``).

Invariants: everything not returned by ``trainable`` is frozen (embeddings, head, norms, shortcut
matrices); after ``merge`` the model's module tree is the one it had before ``attach`` (same
classes, same qualified names, same shapes), so the artifact stays an ordinary sliced artifact.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn

# SliceGPT paper's RFT settings
LORA_RANK = 32
LORA_ALPHA = 10.0
LORA_DROPOUT = 0.05


@dataclass
class Trainable:
    """The parameters to optimise and how to fold them back into plain linears."""

    params: list[nn.Parameter]
    peft_model: object | None = None  # the PeftModel wrapper when LoRA is attached

    @property
    def count(self) -> int:
        return sum(p.numel() for p in self.params)


def target_names(adapter) -> list[str]:
    """Qualified names of every attention and MLP linear (the LoRA targets)."""
    return sorted(adapter.linear_names())


def attach(model: nn.Module, adapter, full: bool, rank: int = LORA_RANK, alpha: float = LORA_ALPHA,
           dropout: float = LORA_DROPOUT) -> Trainable:
    """Freezes the model and returns what to train: LoRA A/B matrices (peft, B = 0 so the function
    is unchanged) or, with ``full``, the attention/MLP linear weights and biases.

    LoRA initialisation draws from torch's global RNG: seed it before calling."""
    names = target_names(adapter)
    for p in model.parameters():
        p.requires_grad_(False)
    if full:
        modules = dict(model.named_modules())
        params = []
        for name in names:
            for p in modules[name].parameters(recurse=False):
                p.requires_grad_(True)
                params.append(p)
        return Trainable(params)
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=names, bias="none")
    with warnings.catch_warnings():
        # peft reads transformers' deprecated `is_gradient_checkpointing` (a FutureWarning on every
        # attach); recovery does its own checkpointing (recover_train.checkpointed), so it is noise.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        peft_model = get_peft_model(model, config)
    params = [p for n, p in peft_model.named_parameters() if p.requires_grad]
    return Trainable(params, peft_model)


@torch.no_grad()
def merge(model: nn.Module, trainable: Trainable) -> nn.Module:
    """Folds LoRA into the base weights (W += (alpha/r)·B·A) and removes the adapters; returns the
    plain model (the same object as before ``attach``). Leaves every parameter frozen."""
    if trainable.peft_model is not None:
        model = trainable.peft_model.merge_and_unload()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
