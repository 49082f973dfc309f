"""AndaLinear: a linear layer with a packed INT4 weight and Anda-quantized input activations.

State (the artifact's tensors, see docs/FORMAT.md): ``weight_packed`` uint8 [N, Kw/2],
``weight_scale`` float32 [N, Kw/group_size], optional ``weight_zero_point`` uint8 (asymmetric),
optional ``bias`` in the model dtype. The mantissa bits (per module, from config.json), rounding and
backend are plain attributes, not state.

forward(x) for x [..., in_features]:
- backend "reference": y = F.linear(quantize(x, M) in exact float32, dequantized W float32) + bias;
- any other backend, on CPU with the C++ extension loaded: ONE call of the fused op
  ``andactl::anda_linear`` (kernels/fused.py) on operands prepacked once and cached (not state),
  returning x.dtype directly (bf16 in, bf16 out; no float32 copies around the op);
- otherwise: torch.ops.andactl.anda_pack then the packed GEMM. On CPU, when the C++
  extension registered ``anda_gemm_prepacked``, the weight is prepacked once (kernels/prepack.py)
  and cached as a NON-persistent attribute (dropped with the dequantized-weight cache on .to() and
  load_state_dict; never in the state dict); otherwise ``anda_gemm`` on the canonical layout (the
  dispatcher picks a C++/CUDA kernel when one is registered, else the pure-torch PE reference);
the float32 result is cast to x.dtype. ``mantissa_bits=None`` keeps activations unquantized
(the W4A16 reference point of the search). Both backends agree up to float32 accumulation order.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from andactl.errors import ConfigError
from andactl.formats import anda
from andactl.formats.int4_layout import SYMMETRIC_ZERO, check_int4, check_weight_group_size, padded_k
from andactl.kernels import fused, ops, prepack


class AndaLinear(nn.Module):
    """y = Anda(x) @ dequant(W_int4)^T + bias, computed in float32, returned in x.dtype."""

    def __init__(self, in_features: int, out_features: int, group_size: int = 128,
                 mantissa_bits: int | None = 8, *, rounding: str = "truncate", asymmetric: bool = False,
                 bias: bool = False, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None,
                 backend: str = "reference"):
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ConfigError(f"AndaLinear needs positive sizes, got in={in_features}, out={out_features}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.group_size = check_weight_group_size(group_size)
        self.mantissa_bits = mantissa_bits
        self.rounding = anda.check_rounding(rounding)
        self.backend = str(backend)
        kw = padded_k(in_features, group_size)
        empty_code = 0 if asymmetric else SYMMETRIC_ZERO | (SYMMETRIC_ZERO << 4)  # all-zero weight
        self.register_buffer("weight_packed", torch.full((out_features, kw // 2), empty_code, dtype=torch.uint8,
                                                         device=device))
        self.register_buffer("weight_scale", torch.zeros(out_features, kw // group_size, dtype=torch.float32,
                                                         device=device))
        zeros = torch.zeros(out_features, kw // group_size, dtype=torch.uint8, device=device) if asymmetric else None
        self.register_buffer("weight_zero_point", zeros)
        self.register_buffer("bias", torch.zeros(out_features, dtype=dtype, device=device) if bias else None)
        self._w_cache: torch.Tensor | None = None  # dequantized weight, not state
        self._wpp_cache: torch.Tensor | None = None  # prepacked weight (kernels/prepack.py), not state
        self._fused_cache: tuple[torch.Tensor, ...] | None = None  # fused-op operands, not state
        self.siblings = None  # SiblingGroup (andactl/models/sibling_linears.py) or None, not state

    @property
    def mantissa_bits(self) -> int | None:
        """Mantissa bits M (1..16) of the input activations, or None for unquantized activations."""
        return self._mantissa_bits

    @mantissa_bits.setter
    def mantissa_bits(self, value: int | None) -> None:
        self._mantissa_bits = None if value is None else anda.check_mantissa_bits(value)

    @classmethod
    def empty(cls, in_features: int, out_features: int, group_size: int = 128, mantissa_bits: int | None = 8,
              **kwargs) -> "AndaLinear":
        """An all-zero module of the given shapes, to be filled by load_state_dict (artifact load)."""
        return cls(in_features, out_features, group_size, mantissa_bits, **kwargs)

    @classmethod
    def from_int4(cls, w_packed: torch.Tensor, w_scales: torch.Tensor, w_zeros: torch.Tensor | None,
                  bias: torch.Tensor | None, in_features: int, group_size: int, mantissa_bits: int | None,
                  *, rounding: str = "truncate", backend: str = "reference") -> "AndaLinear":
        """Wrap INT4 tensors in the ops_spec.md layout (validated; ConfigError names the bad one)."""
        n = check_int4(w_packed, w_scales, w_zeros, group_size, in_features)
        if bias is not None and tuple(bias.shape) != (n,):
            raise ConfigError(f"bias must have shape [{n}], got {tuple(bias.shape)}")
        mod = cls(in_features, n, group_size, mantissa_bits, rounding=rounding, asymmetric=w_zeros is not None,
                  bias=bias is not None, dtype=bias.dtype if bias is not None else torch.float32,
                  device=w_packed.device, backend=backend)
        with torch.no_grad():
            mod.weight_packed.copy_(w_packed)
            mod.weight_scale.copy_(w_scales)
            if w_zeros is not None:
                mod.weight_zero_point.copy_(w_zeros)
            if bias is not None:
                mod.bias.copy_(bias)
        return mod

    def dequantized_weight(self) -> torch.Tensor:
        """float32 [out_features, in_features], cached until the next load_state_dict or .to()."""
        if self._w_cache is None:
            self._w_cache = ops.dequantize_int4(self.weight_packed, self.weight_scale, self.weight_zero_point,
                                                self.group_size, self.in_features)
        return self._w_cache

    def prepacked_weight(self) -> torch.Tensor | None:
        """The weight in the prepacked layout of kernels/prepack.py, cached until the next
        load_state_dict or .to(); None unless the weight is on CPU and a CPU kernel of
        ``andactl::anda_gemm_prepacked`` is registered (the C++ extension is loaded)."""
        if self._wpp_cache is None:
            if self.weight_packed.device.type != "cpu" or not ops.has_cpu_kernel("anda_gemm_prepacked"):
                return None
            self._wpp_cache = prepack.int4_prepack(self.weight_packed, self.weight_scale, self.weight_zero_point,
                                                   self.group_size, self.in_features)
        return self._wpp_cache

    def _apply(self, fn, recurse=True):
        """Device moves apply to every buffer; dtype casts (model.to(bf16)) never touch the float32
        scales (they would lose precision and break the layout); the cached weight is dropped."""
        self._w_cache = None
        self._wpp_cache = None
        self._fused_cache = None
        if self.siblings is not None:
            self.siblings.reset()
        scale = self.weight_scale
        out = super()._apply(fn, recurse)
        if self.weight_scale.dtype != torch.float32:
            self._buffers["weight_scale"] = scale.to(device=self.weight_scale.device)
        return out

    def _load_from_state_dict(self, *args, **kwargs):
        self._w_cache = None
        self._wpp_cache = None
        self._fused_cache = None
        if self.siblings is not None:
            self.siblings.reset()
        return super()._load_from_state_dict(*args, **kwargs)

    def fused_operands(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """(prepacked weight, blocked scales, blocked zero points) for ``andactl::anda_linear``
        (kernels/fused.py), cached like the prepacked weight; None unless the weight is on CPU and
        the C++ extension registered the fused kernel."""
        if self._fused_cache is None:
            if not fused.has_cpu_kernel():
                return None
            wpp = self.prepacked_weight()
            if wpp is None:
                return None
            self._fused_cache = (wpp, *fused.block_scales(self.weight_scale, self.weight_zero_point))
        return self._fused_cache

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ConfigError(f"AndaLinear expects input [..., {self.in_features}], got {tuple(x.shape)}")
        m = self._mantissa_bits
        if m is not None and self.backend != "reference":
            try:
                if self.siblings is not None:  # q/k/v or gate/up as one call (sibling_linears.py)
                    y = self.siblings.run(self, x)
                    if y is not None:
                        return y
                ops_ = self._fused_cache if self._fused_cache is not None else self.fused_operands()
                if ops_ is not None:  # one C++ call: quantize, GEMM, bias, run dtype (no fp32 copies)
                    return torch.ops.andactl.anda_linear(x, m, self.rounding, *ops_, self.bias, self.group_size,
                                                         self.out_features)
            except RuntimeError:
                anda.check_representable(x)  # NaN/Inf/overflow: the one-line NumericsError
                raise
        if m is None:
            y = F.linear(x.to(torch.float32), self.dequantized_weight())
        elif self.backend == "reference":
            xq = anda.quantize(x.to(torch.float32), m, anda.GROUP_SIZE, self.rounding)  # exact values
            y = F.linear(xq, self.dequantized_weight())
        else:
            words, exps = ops.anda_pack(x, m, self.rounding)
            wpp = self.prepacked_weight()
            if wpp is not None:  # operands are ours and were validated when prepacked
                y = torch.ops.andactl.anda_gemm_prepacked(words, exps, m, self.in_features, wpp, self.weight_scale,
                                                          self.weight_zero_point, self.group_size,
                                                          self.out_features)
            else:
                y = ops.anda_gemm(words, exps, m, self.in_features, self.weight_packed, self.weight_scale,
                                  self.weight_zero_point, self.group_size)
        if self.bias is not None:
            y = y + self.bias.to(torch.float32)
        return y.to(x.dtype)

    def extra_repr(self) -> str:
        zp = "asymmetric" if self.weight_zero_point is not None else "symmetric"
        return (f"in_features={self.in_features}, out_features={self.out_features}, group_size={self.group_size}, "
                f"mantissa_bits={self.mantissa_bits}, rounding={self.rounding}, weight={zp}, "
                f"bias={self.bias is not None}, backend={self.backend}")
