"""Export an unsliced INT4-weight (W4A16) andactl artifact to compressed-tensors ``pack-quantized``.

The result is an ordinary HF model folder (base ``model_type``) whose ``quantization_config`` has
``quant_method: compressed-tensors``, loadable by the compressed-tensors library (and so by
transformers' compressed-tensors integration and vLLM). Per packed linear ``<m>``:

| tensor | dtype | shape | content |
| --- | --- | --- | --- |
| ``<m>.weight_packed`` | int32 | ``[N, ceil(K/8)]`` | 8 codes per word, column ``8j+t`` in bits ``4t..4t+3`` |
| ``<m>.weight_scale`` | float32 | ``[N, ceil(K/g)]`` | our scales, unchanged |
| ``<m>.weight_zero_point`` | int32 | ``[ceil(N/8), ceil(K/g)]`` | asymmetric only: codes packed along rows |
| ``<m>.weight_shape`` | int64 | ``[2]`` | ``[N, K]`` |

compressed-tensors stores signed values ``x_q`` in -8..7 as the nibble ``x_q + 8``; our unsigned
code ``q`` is exactly that nibble (``x_q = q - 8``, and likewise for zero points), so the codes are
copied bit for bit and ``(x_q - zp) * scale`` equals our ``(q - z) * scale``. The INT8/INT4 head
and embedding tables of ``quantize_tables`` have no compressed-tensors form: the export holds the
float weights they dequantize to (in the artifact's float dtype; a shared table once, tied). Sliced models
(shortcut matrices, weightless norms) and Anda activations have no compressed-tensors
representation: they are refused with the reason.
"""
from __future__ import annotations

import torch

from andactl.errors import ArtifactError
from andactl.formats.int4_layout import unpack_int4
from andactl.formats.records import ArtifactRecords

CT_FORMAT = "pack-quantized"
# transformers (5.25 tested) refuses a compressed-tensors checkpoint with INT4 zero points at load
ASYMMETRIC_LOAD_ISSUE = "vllm-project/llm-compressor#1618"


def asymmetric_groups(quantization_config: dict) -> bool:
    """True when a compressed-tensors ``quantization_config`` quantizes weights with zero points
    (``symmetric: false`` in any config group)."""
    groups = quantization_config.get("config_groups") if quantization_config.get("quant_method") == "compressed-tensors" else None
    return any(isinstance(g, dict) and isinstance(g.get("weights"), dict) and g["weights"].get("symmetric") is False
               for g in (groups or {}).values())


def check_exportable(records: ArtifactRecords, where) -> None:
    """ArtifactError (one line, saying why) unless the artifact is an unsliced W4A16 model."""
    if records.slicing is not None or records.norms is not None:
        raise ArtifactError(f"{where}: cannot export a sliced (SliceGPT) model to compressed-tensors: its shortcut "
                            "matrices and weightless norms have no representation there; export the unsliced "
                            "quantized model instead")
    if records.activations is not None or any(p.mantissa_bits is not None for p in records.packed.values()):
        raise ArtifactError(f"{where}: cannot export Anda activation quantization to compressed-tensors (no foreign "
                            "runtime has the Anda format); quantize with --activations none (W4A16) to export")
    if not records.packed:
        raise ArtifactError(f"{where}: nothing is INT4-packed in this artifact; compressed-tensors export needs "
                            "INT4 weights (andactl quantize MODEL --activations none -o DIR)")


def pack_codes_int32(codes: torch.Tensor) -> torch.Tensor:
    """uint8 codes [R, C] in 0..15 -> int32 [R, ceil(C/8)]: code of column 8j+t in bits 4t..4t+3 of
    word j (compressed-tensors' dense 4-bit packing). Invariant: exact, bit for bit."""
    rows, cols = codes.shape
    words = -(-cols // 8)
    padded = torch.zeros(rows, words * 8, dtype=torch.int64)
    padded[:, :cols] = codes.to(torch.int64)
    shifts = (torch.arange(8, dtype=torch.int64) * 4)
    acc = (padded.view(rows, words, 8) << shifts).sum(-1)
    acc = torch.where(acc >= 2**31, acc - 2**32, acc)  # two's complement of the 32-bit pattern
    return acc.to(torch.int32).contiguous()


def ct_module_tensors(module) -> dict[str, torch.Tensor]:
    """compressed-tensors tensors (module-local names) of one ``AndaLinear``."""
    n, k, g = module.out_features, module.in_features, module.group_size
    if k % g:
        raise ArtifactError(f"cannot export to compressed-tensors: a layer has in_features {k}, not a multiple of the "
                            f"weight group size {g} (compressed-tensors needs whole groups); quantize with a group "
                            f"size that divides every in_features")
    codes = unpack_int4(module.weight_packed.cpu())[:, :k]
    out = {
        "weight_packed": pack_codes_int32(codes),
        "weight_scale": module.weight_scale.detach().cpu().float().contiguous(),
        "weight_shape": torch.tensor([n, k], dtype=torch.int64),
    }
    if module.weight_zero_point is not None:
        out["weight_zero_point"] = pack_codes_int32(module.weight_zero_point.cpu().T.contiguous()).T.contiguous()
    if module.bias is not None:
        out["bias"] = module.bias.detach().cpu().contiguous()
    return out


def ct_quantization_config(records: ArtifactRecords) -> dict:
    """compressed-tensors quantization_config: one config group per weight scheme."""
    groups: dict[tuple, list[str]] = {}
    for name, p in records.packed.items():
        groups.setdefault((p.group_size, p.symmetric), []).append(name)
    config_groups = {}
    for i, ((gs, sym), targets) in enumerate(sorted(groups.items())):
        config_groups[f"group_{i}"] = {
            "targets": sorted(targets),
            "weights": {"num_bits": 4, "type": "int", "symmetric": sym, "strategy": "group", "group_size": gs,
                        "dynamic": False, "actorder": None, "observer": "minmax"},
            "input_activations": None, "output_activations": None, "format": CT_FORMAT,
        }
    return {"quant_method": "compressed-tensors", "format": CT_FORMAT, "quantization_status": "compressed",
            "config_groups": config_groups, "ignore": ["lm_head"], "kv_cache_scheme": None}


def table_modules(model) -> dict[str, torch.nn.Module]:
    """The INT8/INT4 head and embedding tables of ``model`` (``quantize_tables``), by module name."""
    from andactl.models.quantized_tables import QuantizedEmbedding, QuantizedHead

    return {name: m for name, m in model.named_modules() if isinstance(m, (QuantizedEmbedding, QuantizedHead))}


def export_state(model, records: ArtifactRecords) -> dict[str, torch.Tensor]:
    """Full state dict of the exported model: packed linears in compressed-tensors layout; the
    quantized head and embedding tables as the float ``weight`` they dequantize to (in the model's
    float dtype: compressed-tensors has no form for andactl's tables, and left as codes transformers
    would start those weights from random values); every other tensor as the artifact stores it.
    A table stored once for a tied head and embedding is written once, under the embedding."""
    from andactl.formats.artifact import model_dtype

    packed_prefixes = set(records.packed)
    tables = table_modules(model)
    dtype = model_dtype(model)
    state: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, t in model.state_dict().items():
        module, _, leaf = name.rpartition(".")
        if module in packed_prefixes:
            continue
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen and t.numel():
            continue  # tied alias (lm_head of a tied-embedding model)
        seen.add(ptr)
        if module in tables and leaf in ("weight_packed", "weight_scale"):
            if leaf == "weight_packed":
                state[f"{module}.weight"] = tables[module].dequantized().to(dtype).cpu().contiguous()
            continue
        state[name] = t.detach().cpu().contiguous()
    for name in records.packed:
        for key, t in ct_module_tensors(model.get_submodule(name)).items():
            state[f"{name}.{key}"] = t
    return state
