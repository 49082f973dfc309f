"""Architecture adapters: the accessors every pass uses, dispatched on ``config.model_type``.

Passes never reach into HF module names themselves; they ask the adapter. An adapter holds no
state besides the model it wraps, so building one is free and it always reflects the live model.
"""
from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from andactl.errors import ModelError

from andactl.formats.anda import ACTIVATION_TYPES as ANDA_TYPES  # noqa: E402  (re-exported)


class Adapter:
    """Accessors for one architecture family. Subclasses fill in the module paths."""

    model_types: ClassVar[tuple[str, ...]] = ()
    norm_kind: ClassVar[str] = "rmsnorm"  # or "layernorm"
    parallel_blocks: ClassVar[bool] = False

    def __init__(self, model: nn.Module):
        self.model = model
        self.config = model.config
        self.check_supported()

    def check_supported(self) -> None:
        return None

    # --- sizes -------------------------------------------------------------------------------
    @property
    def hidden_size(self) -> int:
        return self.config.hidden_size

    @property
    def norm_eps(self) -> float:
        return float(getattr(self.config, "rms_norm_eps", 1e-5))

    # --- model-level modules -------------------------------------------------------------------
    @property
    def decoder(self) -> nn.Module:
        return self.model.model

    def embeddings(self) -> list[nn.Embedding]:
        """Embeddings whose sum is the residual stream entering layer 0 (token first)."""
        return [self.decoder.embed_tokens]

    def layers(self) -> nn.ModuleList:
        return self.decoder.layers

    def final_norm(self) -> nn.Module:
        return self.decoder.norm

    def set_final_norm(self, module: nn.Module) -> None:
        self.decoder.norm = module

    def head(self) -> nn.Linear:
        return self.model.lm_head

    # --- per-layer modules ------------------------------------------------------------------------
    def attn_norm(self, layer) -> nn.Module:
        return layer.input_layernorm

    def set_attn_norm(self, layer, module) -> None:
        layer.input_layernorm = module

    def mlp_norm(self, layer) -> nn.Module:
        return layer.post_attention_layernorm

    def set_mlp_norm(self, layer, module) -> None:
        layer.post_attention_layernorm = module

    def attn_inputs(self, layer) -> list[nn.Linear]:
        a = layer.self_attn
        return [a.q_proj, a.k_proj, a.v_proj]

    def attn_output(self, layer) -> nn.Linear:
        return layer.self_attn.o_proj

    def mlp_inputs(self, layer) -> list[nn.Linear]:
        return [layer.mlp.gate_proj, layer.mlp.up_proj]

    def mlp_output(self, layer) -> nn.Linear:
        return layer.mlp.down_proj

    def run_attention(self, layer, hidden: torch.Tensor, kwargs: dict) -> torch.Tensor:
        """Self-attention of ``layer`` on the already-normed ``hidden`` (layer kwargs passed on)."""
        out = layer.self_attn(hidden_states=hidden, **kwargs)
        return out[0] if isinstance(out, tuple) else out

    def run_mlp(self, layer, hidden: torch.Tensor) -> torch.Tensor:
        return layer.mlp(hidden)

    def anda_linears(self, layer) -> dict[str, list[nn.Linear]]:
        """Linears grouped by the Anda activation type of their input."""
        return {
            "qkv": self.attn_inputs(layer),
            "o": [self.attn_output(layer)],
            "u": self.mlp_inputs(layer),
            "d": [self.mlp_output(layer)],
        }

    def linear_names(self) -> dict[str, str]:
        """Qualified module name -> Anda type, for every linear an Anda activation feeds."""
        ids = {}
        for layer in self.layers():
            for kind, mods in self.anda_linears(layer).items():
                for m in mods:
                    ids[id(m)] = kind
        return {name: ids[id(m)] for name, m in self.model.named_modules() if id(m) in ids}


class LlamaAdapter(Adapter):
    """Llama-2/3, SmolLM2, Mistral-style GQA: pre-RMSNorm, sequential blocks, SwiGLU MLP."""

    model_types = ("llama", "mistral")


class Qwen2Adapter(LlamaAdapter):
    """Qwen2: Llama layout with q/k/v biases."""

    model_types = ("qwen2",)


class Qwen3Adapter(LlamaAdapter):
    """Qwen3: Llama layout with per-head RMSNorms on q and k (they act on head outputs, which
    rotating or slicing the residual stream never touches)."""

    model_types = ("qwen3",)


class SmolLM3Adapter(LlamaAdapter):
    """SmolLM3: Llama layout; some layers skip the rotary embedding (NoPE), inside attention."""

    model_types = ("smollm3",)


class Phi3Adapter(LlamaAdapter):
    """Phi-3 / Phi-4-mini: Llama layout with q/k/v fused into one ``qkv_proj`` and gate/up into one
    ``gate_up_proj`` (each reads the residual stream once: one linear per Anda input)."""

    model_types = ("phi3",)

    def attn_inputs(self, layer) -> list[nn.Linear]:
        return [layer.self_attn.qkv_proj]

    def mlp_inputs(self, layer) -> list[nn.Linear]:
        return [layer.mlp.gate_up_proj]


class OPTAdapter(Adapter):
    """OPT: pre-LayerNorm (do_layer_norm_before), learned positions, ReLU MLP fc1/fc2."""

    model_types = ("opt",)
    norm_kind = "layernorm"

    def check_supported(self):
        cfg = self.config
        if not cfg.do_layer_norm_before:
            raise ModelError("OPT variants with post-LayerNorm (do_layer_norm_before=False, e.g. opt-350m) are not supported")
        if cfg.word_embed_proj_dim != cfg.hidden_size:
            raise ModelError("OPT variants with project_in/project_out (word_embed_proj_dim != hidden_size) are not supported")

    @property
    def norm_eps(self) -> float:
        return 1e-5  # nn.LayerNorm default, which OPT uses

    @property
    def decoder(self):
        return self.model.model.decoder

    def embeddings(self):
        return [self.decoder.embed_tokens, self.decoder.embed_positions]

    def final_norm(self):
        return self.decoder.final_layer_norm

    def set_final_norm(self, module):
        self.decoder.final_layer_norm = module

    def attn_norm(self, layer):
        return layer.self_attn_layer_norm

    def set_attn_norm(self, layer, module):
        layer.self_attn_layer_norm = module

    def mlp_norm(self, layer):
        return layer.final_layer_norm

    def set_mlp_norm(self, layer, module):
        layer.final_layer_norm = module

    def attn_output(self, layer):
        return layer.self_attn.out_proj

    def mlp_inputs(self, layer):
        return [layer.fc1]

    def mlp_output(self, layer):
        return layer.fc2

    def run_mlp(self, layer, hidden):
        return layer.fc2(layer.activation_fn(layer.fc1(hidden)))


class PhiAdapter(Adapter):
    """Phi-1/1.5/2: one pre-LayerNorm feeding attention and MLP in parallel
    (``x + attn(ln(x)) + mlp(ln(x))``), partial rotary, biased linears and head, GELU MLP fc1/fc2.

    ``mlp_norm`` is the same module as ``attn_norm``: passes that walk a parallel block read one
    norm and one residual signal per layer (see ``parallel_blocks``)."""

    model_types = ("phi",)
    norm_kind = "layernorm"
    parallel_blocks = True

    def check_supported(self):
        if getattr(self.config, "qk_layernorm", False):
            raise ModelError("phi variants with qk_layernorm=True are not supported (the q/k LayerNorms sit inside attention)")

    @property
    def norm_eps(self) -> float:
        return float(self.config.layer_norm_eps)

    def final_norm(self):
        return self.decoder.final_layernorm

    def set_final_norm(self, module):
        self.decoder.final_layernorm = module

    def mlp_norm(self, layer):
        return layer.input_layernorm

    def set_mlp_norm(self, layer, module):
        layer.input_layernorm = module

    def attn_output(self, layer):
        return layer.self_attn.dense

    def mlp_inputs(self, layer):
        return [layer.mlp.fc1]

    def mlp_output(self, layer):
        return layer.mlp.fc2


ADAPTERS: tuple[type[Adapter], ...] = (LlamaAdapter, Qwen2Adapter, Qwen3Adapter, SmolLM3Adapter, Phi3Adapter,
                                       OPTAdapter, PhiAdapter)


def supported_model_types() -> list[str]:
    return sorted(t for a in ADAPTERS for t in a.model_types)


def get_adapter(model: nn.Module) -> Adapter:
    """The adapter for ``model.config.model_type``; ModelError listing supported types otherwise."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    for cls in ADAPTERS:
        if model_type in cls.model_types:
            return cls(model)
    raise ModelError(
        f"unsupported architecture '{model_type}'; supported model types: {', '.join(supported_model_types())}"
    )
