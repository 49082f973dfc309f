"""``andactl export``: an artifact in a foreign format (compressed-tensors ``pack-quantized``)."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import click

from andactl import __version__
from andactl.errors import ArtifactError, ConfigError

log = logging.getLogger("andactl")

_OWN_FILES = ("config.json", "model.safetensors", "recipe.yaml", "report.json")


def export_compressed_tensors(src: Path, out: Path, overwrite: bool = False) -> Path:
    """Writes the compressed-tensors export of artifact ``src`` to ``out`` atomically (nothing is
    written on any error; ``out`` is only replaced with ``overwrite``)."""
    from safetensors.torch import save_file

    from andactl.formats.export_ct import ASYMMETRIC_LOAD_ISSUE, check_exportable, ct_quantization_config, export_state
    from andactl.formats.reader import base_config_dict, read_artifact, read_config, read_records
    from andactl.formats.records import SECTION

    from andactl.formats.output_dir import EXPORT_RECORD, check_output, staged_output

    out = check_output(out, overwrite)
    if out == src.resolve():
        raise ConfigError("the export cannot overwrite its own source artifact")
    config = read_config(src)
    records = read_records(config, src)
    check_exportable(records, src)
    model, _ = read_artifact(src)
    state = export_state(model, records)
    hf_config = base_config_dict(config)
    hf_config["quantization_config"] = ct_quantization_config(records)
    if (config[SECTION].get("tables") or {}).get("shared"):  # one table for head and embedding: tied again
        hf_config["tie_word_embeddings"] = True
    record = {"format": "compressed-tensors pack-quantized", "source": str(src.resolve()),
              "andactl_version": __version__}
    with staged_output(out, overwrite) as tmp:
        (tmp / "config.json").write_text(json.dumps(hf_config, indent=2, default=str) + "\n")
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        for f in src.iterdir():
            if f.is_file() and f.name not in _OWN_FILES:
                shutil.copyfile(f, tmp / f.name)
        (tmp / EXPORT_RECORD).write_text(json.dumps(record, indent=2) + "\n")
    if any(not p.symmetric for p in records.packed.values()):
        log.warning("asymmetric INT4 weights: the export keeps their zero points packed as compressed-tensors "
                    "writes them; transformers 5.25 (tested) refuses those at load with a size mismatch "
                    f"({ASYMMETRIC_LOAD_ISSUE}); `andactl quantize --symmetric` gives an export it opens")
    return out


@click.command("export")
@click.argument("artifact", type=click.Path(path_type=Path))
@click.option("--to", "target", type=click.Choice(["compressed-tensors"]), required=True,
              help="Target format (compressed-tensors pack-quantized: unsliced W4A16 artifacts only).")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty output folder.")
def export(artifact, target, output, overwrite):
    """Export ARTIFACT to a foreign format; prints the output folder on stdout."""
    if not (artifact / "config.json").is_file():
        raise ArtifactError(f"{artifact}: not an andactl artifact (no config.json)")
    path = export_compressed_tensors(artifact, output, overwrite)
    click.echo(str(path))


COMMANDS = [export]
