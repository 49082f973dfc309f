"""A model's sizes from its config alone: the module tree built on the meta device (an artifact's
structure records replayed on it, so sliced widths are exact); no weight is read."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from andactl.data.model_text import kv_width
from andactl.errors import ConfigError, ModelError
from andactl.models.slice_count import SliceTerms, recorded_tied_source, slice_terms, sliced_parameters


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
    attention: str = "eager"  # transformers' attention implementation the model loads with ("sdpa" for every family here)


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


def shape_fields(shape: ModelShape) -> dict:
    """The report's ``shape``: ModelShape's sizes (its per-layer slicing terms left out)."""
    return {k: v for k, v in asdict(shape).items() if k != "slicing"}


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
        from andactl.formats.reader import build_hf_config, config_object, read_config, read_records
        from andactl.formats.records import SECTION

        config = read_config(path)
        meta = {"records": read_records(config, str(path))} if SECTION in config else {}
        hf = build_hf_config(config, path) if SECTION in config else config_object(config, path)
        size = sum(f.stat().st_size for f in path.glob("*.safetensors")) + sum(f.stat().st_size for f in path.glob("*.bin"))
        return hf, meta, size
    if path.exists():
        from andactl.models.loading import not_a_model

        raise not_a_model(source)
    from transformers import AutoConfig

    from andactl.models.hub import hub_model_kwargs

    kwargs = hub_model_kwargs(source)
    try:
        return AutoConfig.from_pretrained(source, **kwargs), {}, 0
    except Exception as err:
        raise ModelError(f"could not read the config of '{source}' ({type(err).__name__})") from err


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
        attention=getattr(model.config, "_attn_implementation", None) or "eager",
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
