"""Sibling AndaLinears: the input projections of one block that read the same tensor (q/k/v of an
attention, gate/up of an MLP) run as ONE call of the fused op on their concatenated weights.

transformers calls ``q_proj(h)``, ``k_proj(h)``, ``v_proj(h)`` one after the other on the same
tensor. With a group linked, the first call quantizes ``h`` once, multiplies it by the three
weights in one GEMM (one dispatch instead of three, a wider N for the AMX/VNNI panels), returns its
own columns and keeps the others for the siblings, which take them when they are called with that
same tensor object at the same version. Every output column is computed exactly as the member's
own fused call would compute it (same quantized activations, same per-output float32
accumulation in group order), so results are bit-identical.

Invariants: outputs are only reused for the identical input tensor, unmodified (its version counter;
inference-mode tensors have none, so there the identity alone decides); a member called
with another tensor while outputs are pending (a model that does not call its projections this
way) disables the group for good and runs alone; grad-requiring inputs never use the group; any
weight reload or device/dtype move of a member drops the concatenated operands.
"""
from __future__ import annotations

import torch
from torch import nn

from andactl.formats import anda

# Child names whose modules read the same input in every supported family (one tuple per group).
SIBLING_NAMES = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))


class SiblingGroup:
    """The members (AndaLinears in call order) and, lazily, their concatenated fused operands."""

    def __init__(self, members: list[nn.Module]):
        self.members = list(members)
        self.sizes = [m.out_features for m in self.members]
        self.n = sum(self.sizes)
        self.enabled = True
        self._operands: tuple | None = None
        self._x: torch.Tensor | None = None
        self._version = -1
        self._pending: dict[int, torch.Tensor] = {}

    def reset(self) -> None:
        """Drops the concatenated operands and any pending outputs (weights or device changed)."""
        self._operands = None
        self._clear()

    def _clear(self) -> None:
        self._x, self._version, self._pending = None, -1, {}

    def operands(self) -> tuple | None:
        """(prepacked weight, blocked scales, blocked zero points, bias or None) of all members
        concatenated along N (the members' own prepacked copies are then dropped: one copy in
        memory); None when a member has no fused operands (no C++ kernel)."""
        if self._operands is None:
            parts = [m.fused_operands() for m in self.members]
            if any(p is None for p in parts):
                return None
            wpp = torch.cat([p[0] for p in parts])
            # float16 only when every member's scales are (cat promotes a mix to float32, values exact)
            scb = torch.cat([p[1] for p in parts])
            # symmetric members share one block of zero points (all 8); asymmetric ones have a block each
            symmetric = self.members[0].weight_zero_point is None
            zb = parts[0][2] if symmetric else torch.cat([p[2] for p in parts])
            bias = None
            if any(m.bias is not None for m in self.members):
                dt = next(m.bias.dtype for m in self.members if m.bias is not None)
                bias = torch.cat([m.bias.to(dt) if m.bias is not None else torch.zeros(m.out_features, dtype=dt)
                                  for m in self.members])
            self._operands = (wpp, scb, zb, bias)
            for m in self.members:  # one prepacked copy in memory: a member running alone rebuilds its own
                m._fused_cache = m._wpp_cache = None
        return self._operands

    def run(self, member: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
        """``member``'s output for ``x`` from the group's shared call, or None: run it alone."""
        if not self.enabled or (x.requires_grad and torch.is_grad_enabled()):
            return None
        key = id(member)
        if self._x is x and self._version == _version(x) and key in self._pending:
            y = self._pending.pop(key)
            if not self._pending:
                self._clear()
            return y
        if self._pending:  # outputs of another input still pending: not called as siblings
            self.enabled = False
            self._clear()
            return None
        ops = self.operands()
        if ops is None:
            return None
        first = self.members[0]
        y = torch.ops.andactl.anda_linear(x, first.mantissa_bits, first.rounding, *ops, first.group_size, self.n)
        outs = y.split(self.sizes, dim=-1)
        self._pending = {id(m): o for m, o in zip(self.members, outs) if m is not member}
        self._x, self._version = (x, _version(x)) if self._pending else (None, -1)
        return outs[self.members.index(member)]


    def run_all(self, x: torch.Tensor) -> tuple[torch.Tensor, ...] | None:
        """Every member's output for ``x`` from one call, in member order (a caller that wants them
        all at once: no pending outputs are kept), or None where the members' own forwards must run
        (group disabled, a grad-requiring input, a member on the reference backend or without
        mantissa bits, no C++ kernel). Bit-identical to calling the members one by one."""
        first = self.members[0]
        if (not self.enabled or (x.requires_grad and torch.is_grad_enabled()) or x.shape[-1] != first.in_features
                or any(m.backend == "reference" or m.mantissa_bits is None for m in self.members)):
            return None
        ops = self.operands()
        if ops is None:
            return None
        try:
            y = torch.ops.andactl.anda_linear(x, first.mantissa_bits, first.rounding, *ops, first.group_size, self.n)
        except RuntimeError:
            anda.check_representable(x)  # NaN/Inf/overflow: the one-line NumericsError
            raise
        return y.split(self.sizes, dim=-1)


def _version(x: torch.Tensor) -> int:
    """x's in-place version counter; inference tensors have none (-2: identity alone decides)."""
    return -2 if x.is_inference() else x._version


def _compatible(mods: list[nn.Module]) -> bool:
    a = mods[0]
    return all(m.in_features == a.in_features and m.group_size == a.group_size
               and m.mantissa_bits == a.mantissa_bits and m.mantissa_bits is not None
               and m.rounding == a.rounding and (m.weight_zero_point is None) == (a.weight_zero_point is None)
               and m.out_features % 16 == 0 and m.weight_packed.device == a.weight_packed.device
               and (m.bias is None or a.bias is None or m.bias.dtype == a.bias.dtype)
               for m in mods)


def link_siblings(model: nn.Module, enable: bool = True) -> int:
    """Links (enable) or unlinks every group of SIBLING_NAMES children that are compatible
    AndaLinears (same input size, group size, mantissa bits, rounding, zero-point kind, device,
    out_features a multiple of 16); returns the number of groups linked."""
    from andactl.models.anda_linear import AndaLinear

    linked = 0
    for parent in model.modules():
        for names in SIBLING_NAMES:
            mods = [getattr(parent, n, None) for n in names]
            mods = [m for m in mods if isinstance(m, AndaLinear)]
            if len(mods) < 2:
                continue
            group = SiblingGroup(mods) if enable and _compatible(mods) else None
            for m in mods:
                m.siblings = group
            linked += group is not None
    return linked
