"""Typed, versioned records of every structural change an artifact's module tree carries.

An artifact's ``config.json`` holds the HF config of the base architecture with
``"model_type": "andactl"`` and an ``"andactl"`` section; the records below are that section's
structural part (docs/FORMAT.md). Packed modules are described by ``quantization_config`` alone
(``formats.quant_config``). Passes produce these records; the reader (``formats.reader``) builds
the module tree from them. Every ``from_dict`` validates and raises ``ArtifactError`` with one line
naming the bad field.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from andactl.errors import ArtifactError
from andactl.formats.anda import ACTIVATION_TYPES, MAX_MANTISSA_BITS, MIN_MANTISSA_BITS, ROUNDINGS

FORMAT_VERSION = 2  # the one home of the artifact format version
SECTION = "andactl"  # config.json section of andactl's own metadata
MODEL_TYPE = "andactl"  # config.json model_type: foreign loaders fail instead of misreading
FLOAT_DTYPES = ("float32", "float16", "bfloat16", "float64")


def _int(value, what: str, low: int = 0, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f" in {low}..{high}" if high is not None else f" >= {low}"
        raise ArtifactError(f"artifact record: {what} must be an integer{bound}, got {value!r}")
    return value


def check_mantissa(value, what: str) -> int | None:
    """``value`` if it is None or an integer in 1..16; ArtifactError otherwise."""
    return None if value is None else _int(value, what, MIN_MANTISSA_BITS, MAX_MANTISSA_BITS)


def check_rounding(value, what: str) -> str:
    if value not in ROUNDINGS:
        raise ArtifactError(f"artifact record: {what} must be one of {', '.join(ROUNDINGS)}, got {value!r}")
    return value


@dataclass(frozen=True)
class NormRecord:
    """Norms fused (fuse_norms): every norm is ``RMSN(hidden_size, eps)``, the head is untied and the
    linears in ``biased`` gained a bias from a LayerNorm shift; ``tied_source``: the source's head
    was tied to its token embedding (slicing can then store one table for both)."""

    hidden_size: int
    eps: float
    biased: tuple[str, ...] = ()
    tied_source: bool = False

    @classmethod
    def from_dict(cls, d: dict) -> "NormRecord":
        if not isinstance(d, dict):
            raise ArtifactError(f"artifact record: norms must be a mapping, got {type(d).__name__}")
        eps = d.get("eps")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < 1:
            raise ArtifactError(f"artifact record: norms.eps must be a number in (0, 1), got {eps!r}")
        biased = d.get("biased", [])
        if not isinstance(biased, list) or not all(isinstance(b, str) for b in biased):
            raise ArtifactError("artifact record: norms.biased must be a list of module names")
        tied = d.get("tied_source", False)
        if not isinstance(tied, bool):
            raise ArtifactError(f"artifact record: norms.tied_source must be true or false, got {tied!r}")
        return cls(_int(d.get("hidden_size"), "norms.hidden_size", 1), float(eps), tuple(biased), tied)

    def to_dict(self) -> dict:
        out = {"hidden_size": self.hidden_size, "eps": self.eps, "biased": list(self.biased)}
        return {**out, "tied_source": True} if self.tied_source else out


@dataclass(frozen=True)
class SlicedLayer:
    """One SliceGPT layer: residual width entering it (``attn_in``), after attention (``mlp_in``) and
    leaving it (``out``). Shortcut shapes: ``[attn_in, mlp_in]`` and ``[mlp_in, out]``."""

    attn_in: int
    mlp_in: int
    out: int

    @property
    def attn_shortcut(self) -> tuple[int, int]:
        return (self.attn_in, self.mlp_in)

    @property
    def mlp_shortcut(self) -> tuple[int, int]:
        return (self.mlp_in, self.out)


@dataclass(frozen=True)
class SlicingRecord:
    """SliceGPT layers (rotated, possibly sliced): embedding width, per-layer widths, head input
    width. Invariant (checked): each layer's input is the previous layer's output (the first
    layer's is ``embedding_dim``), the last output is ``head_in``, every width is in 1..hidden_size."""

    hidden_size: int
    embedding_dim: int
    head_in: int
    layers: tuple[SlicedLayer, ...]
    tied_head: bool = False  # head = TiedHead over the token embedding's table (models/tied_head.py)

    @classmethod
    def full(cls, hidden_size: int, num_layers: int) -> "SlicingRecord":
        """Rotated, not (yet) sliced: every width is the hidden size (D x D shortcuts)."""
        d = int(hidden_size)
        return cls(d, d, d, tuple(SlicedLayer(d, d, d) for _ in range(num_layers)))

    @classmethod
    def from_plan(cls, hidden_size: int, plan: dict, tied_head: bool = False) -> "SlicingRecord":
        """From rotate's plan ``{"embedding", "head_in", "layers": [{"attn_in", "mlp_in", "out"}]}``."""
        return cls.from_dict({"hidden_size": hidden_size, "embedding_dim": plan["embedding"],
                              "head_in": plan["head_in"], "layers": plan["layers"], "tied_head": tied_head})

    @classmethod
    def from_dict(cls, d: dict) -> "SlicingRecord":
        if not isinstance(d, dict) or not isinstance(d.get("layers"), list):
            raise ArtifactError("artifact record: slicing must be a mapping with a 'layers' list")
        D = _int(d.get("hidden_size"), "slicing.hidden_size", 1)
        emb = _int(d.get("embedding_dim"), "slicing.embedding_dim", 1, D)
        layers, prev = [], emb
        for i, rec in enumerate(d["layers"]):
            if not isinstance(rec, dict):
                raise ArtifactError(f"artifact record: slicing.layers[{i}] must be a mapping")
            dims = [_int(rec.get(k), f"slicing.layers[{i}].{k}", 1, D) for k in ("attn_in", "mlp_in", "out")]
            if dims[0] != prev:
                raise ArtifactError(f"artifact record: slicing.layers[{i}].attn_in is {dims[0]}, "
                                    f"but the residual entering it has width {prev}")
            layers.append(SlicedLayer(*dims))
            prev = dims[2]
        head_in = _int(d.get("head_in"), "slicing.head_in", 1, D)
        if head_in != prev:
            raise ArtifactError(f"artifact record: slicing.head_in is {head_in}, but the last layer outputs {prev}")
        tied = d.get("tied_head", False)
        if not isinstance(tied, bool):
            raise ArtifactError(f"artifact record: slicing.tied_head must be true or false, got {tied!r}")
        return cls(D, emb, head_in, tuple(layers), tied)

    def to_dict(self) -> dict:
        out = {"hidden_size": self.hidden_size, "embedding_dim": self.embedding_dim, "head_in": self.head_in,
               "layers": [asdict(layer) for layer in self.layers]}
        return {**out, "tied_head": True} if self.tied_head else out

    def to_plan(self) -> dict:
        """The dims record ``andactl.models.structure.apply_dims`` takes."""
        return {"embedding_dim": self.embedding_dim, "head_in": self.head_in,
                "layers": [asdict(layer) for layer in self.layers], "tied_head": self.tied_head}


@dataclass(frozen=True)
class ActivationRecord:
    """Float weights with permanent Anda activation fake-quant (``--weights none``): M per activation
    type (or per qualified module name), and the rounding."""

    bits: dict
    rounding: str = "truncate"

    @classmethod
    def from_dict(cls, d: dict) -> "ActivationRecord":
        if not isinstance(d, dict) or not isinstance(d.get("bits"), dict):
            raise ArtifactError("artifact record: activations must be a mapping with a 'bits' mapping")
        bits = {}
        for key, m in d["bits"].items():
            if key not in ACTIVATION_TYPES and "." not in key:
                raise ArtifactError(f"artifact record: activations.bits key {key!r} is neither an activation type "
                                    f"({', '.join(ACTIVATION_TYPES)}) nor a module name")
            bits[key] = check_mantissa(m, f"activations.bits.{key}")
        return cls(bits, check_rounding(d.get("rounding", "truncate"), "activations.rounding"))

    def to_dict(self) -> dict:
        return {"bits": dict(self.bits), "rounding": self.rounding}


@dataclass(frozen=True)
class PackedModule:
    """A linear replaced by ``AndaLinear``: INT4 weight in groups of ``group_size`` (symmetric: zero
    point 8, else stored zero points), Anda input activations with ``mantissa_bits`` (None: W4A16)."""

    name: str
    group_size: int
    symmetric: bool
    mantissa_bits: int | None
    rounding: str = "truncate"

    def __post_init__(self):
        if not self.name or not isinstance(self.name, str):
            raise ArtifactError(f"artifact record: packed module name must be a non-empty string, got {self.name!r}")
        gs = _int(self.group_size, f"{self.name}: weight group_size", 64)
        if gs % 64:
            raise ArtifactError(f"artifact record: {self.name}: weight group_size must be a multiple of 64, got {gs}")
        if not isinstance(self.symmetric, bool):
            raise ArtifactError(f"artifact record: {self.name}: symmetric must be true or false")
        check_mantissa(self.mantissa_bits, f"{self.name}: mantissa_bits")
        check_rounding(self.rounding, f"{self.name}: rounding")


@dataclass(frozen=True)
class TablesRecord:
    """The token embedding and/or LM head stored as group-wise INT8/INT4 tables
    (formats/table_quant.py); ``shared``: one table read by both (tied weights). On a sliced model
    whose head is a TiedHead (SlicingRecord.tied_head): ``one_table``, the head's table is quantized
    and the embedding reads its prefix; ``float_embedding`` {"rows", "cols", "dtype"}, the embedding
    was split off as a float table (the head's table quantized, the embedding not)."""

    group_size: int
    shared: bool
    embeddings: dict | None  # {"bits", "rows", "cols", "padding_idx", "dtype"}
    head: dict | None  # {"bits", "in", "out", "bias", "dtype"}
    one_table: bool = False
    float_embedding: dict | None = None

    @classmethod
    def from_dict(cls, d: dict) -> "TablesRecord":
        if not isinstance(d, dict):
            raise ArtifactError("artifact record: tables must be a mapping")
        gs = _int(d.get("group_size"), "tables.group_size", 1)
        e, h = d.get("embeddings"), d.get("head")
        for part, keys in ((e, ("bits", "rows", "cols")), (h, ("bits", "in", "out"))):
            if part is None:
                continue
            if not isinstance(part, dict):
                raise ArtifactError("artifact record: tables entries must be mappings or null")
            if part.get("bits") not in (4, 8):
                raise ArtifactError(f"artifact record: tables bits must be 4 or 8, got {part.get('bits')!r}")
            for k in keys[1:]:
                _int(part.get(k), f"tables.{k}", 1)
            if part.get("dtype", "float32") not in FLOAT_DTYPES:
                raise ArtifactError(f"artifact record: tables dtype {part.get('dtype')!r} is not a float dtype")
        shared = d.get("shared", False)
        if shared and (e is None or h is None or e["bits"] != h["bits"]):
            raise ArtifactError("artifact record: shared tables need an embedding and a head with the same bits")
        one, fe = d.get("one_table", False), d.get("float_embedding")
        if not isinstance(one, bool) or (one and (h is None or e is not None or shared)):
            raise ArtifactError("artifact record: tables.one_table needs a head table and no embedding table")
        if fe is not None:
            if not isinstance(fe, dict) or e is not None or fe.get("dtype", "float32") not in FLOAT_DTYPES:
                raise ArtifactError("artifact record: tables.float_embedding must be a mapping, "
                                    "without an embedding table")
            for k in ("rows", "cols"):
                _int(fe.get(k), f"tables.float_embedding.{k}", 1)
        return cls(gs, bool(shared), e, h, one, fe)

    def to_dict(self) -> dict:
        out = asdict(self)
        for key in ("one_table", "float_embedding"):  # written only when used (older records stay as they were)
            if not out[key]:
                del out[key]
        return out


@dataclass
class ArtifactRecords:
    """The structural description of an artifact, in the order the reader applies it:
    norms -> slicing -> packed modules -> activation hooks. ``dtype`` is the storage dtype of every
    float tensor except packed modules' float32 ``weight_scale``."""

    base_model_type: str
    dtype: str = "float32"
    norms: NormRecord | None = None
    slicing: SlicingRecord | None = None
    activations: ActivationRecord | None = None
    packed: dict[str, PackedModule] = field(default_factory=dict)
    tables: TablesRecord | None = None

    def to_section(self) -> dict:
        """The structural keys of the config.json ``andactl`` section (packed modules go to
        ``quantization_config``)."""
        return {
            "format_version": FORMAT_VERSION, "base_model_type": self.base_model_type, "dtype": self.dtype,
            "norms": self.norms.to_dict() if self.norms else None,
            "slicing": self.slicing.to_dict() if self.slicing else None,
            "activations": self.activations.to_dict() if self.activations else None,
            "tables": self.tables.to_dict() if self.tables else None,
        }

    @classmethod
    def from_section(cls, section: dict, packed: dict[str, PackedModule] | None = None) -> "ArtifactRecords":
        """Validated records from the ``andactl`` section (version checked first)."""
        check_version(section)
        base = section.get("base_model_type")
        if not isinstance(base, str) or not base:
            raise ArtifactError("artifact record: base_model_type is missing")
        dtype = section.get("dtype")
        if dtype not in FLOAT_DTYPES:
            raise ArtifactError(f"artifact record: dtype must be one of {', '.join(FLOAT_DTYPES)}, got {dtype!r}")
        norms = section.get("norms")
        slicing = section.get("slicing")
        acts = section.get("activations")
        recs = cls(base, dtype, NormRecord.from_dict(norms) if norms is not None else None,
                   SlicingRecord.from_dict(slicing) if slicing is not None else None,
                   ActivationRecord.from_dict(acts) if acts is not None else None, dict(packed or {}),
                   TablesRecord.from_dict(section["tables"]) if section.get("tables") is not None else None)
        if recs.slicing is not None and recs.norms is not None and recs.slicing.hidden_size != recs.norms.hidden_size:
            raise ArtifactError(f"artifact record: slicing.hidden_size {recs.slicing.hidden_size} differs from "
                                f"norms.hidden_size {recs.norms.hidden_size}")
        return recs

    def check_against(self, hidden_size: int, num_layers: int) -> None:
        """Records agree with the base HF config: widths <= hidden size, one slicing entry per layer."""
        for rec, what in ((self.norms, "norms"), (self.slicing, "slicing")):
            if rec is not None and rec.hidden_size != hidden_size:
                raise ArtifactError(f"artifact record: {what}.hidden_size is {rec.hidden_size}, the config's "
                                    f"hidden_size is {hidden_size}")
        if self.slicing is not None and len(self.slicing.layers) != num_layers:
            raise ArtifactError(f"artifact record: slicing has {len(self.slicing.layers)} layers, the config "
                                f"{num_layers}")


def check_version(section: dict) -> int:
    """The section's format version if this andactl reads it; ArtifactError saying what to do else."""
    version = section.get("format_version") if isinstance(section, dict) else None
    if version == FORMAT_VERSION:
        return version
    if isinstance(version, int) and version < FORMAT_VERSION:
        raise ArtifactError(f"artifact format version {version} is older than this andactl's version "
                            f"{FORMAT_VERSION}; re-run the command that made it to write a version {FORMAT_VERSION} artifact")
    raise ArtifactError(f"artifact format version {version!r}; this andactl reads version {FORMAT_VERSION}")
