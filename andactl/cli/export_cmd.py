"""``andactl export``: an artifact in a foreign format (compressed-tensors ``pack-quantized``)."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import click

from andactl.errors import ArtifactError, ConfigError

_OWN_FILES = ("config.json", "model.safetensors", "recipe.yaml", "report.json")


def export_compressed_tensors(src: Path, out: Path, overwrite: bool = False) -> Path:
    """Writes the compressed-tensors export of artifact ``src`` to ``out`` atomically (nothing is
    written on any error; ``out`` is only replaced with ``overwrite``)."""
    from safetensors.torch import save_file

    from andactl.formats.export_ct import check_exportable, ct_quantization_config, export_state
    from andactl.formats.reader import base_config_dict, read_artifact, read_config, read_records

    out = out.expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise ConfigError(f"output directory {out} exists and is not empty (pass --overwrite to replace it)")
    if out == src.resolve():
        raise ConfigError("the export cannot overwrite its own source artifact")
    config = read_config(src)
    records = read_records(config, src)
    check_exportable(records, src)
    model, _ = read_artifact(src)
    state = export_state(model, records)
    hf_config = base_config_dict(config)
    hf_config["quantization_config"] = ct_quantization_config(records)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        (tmp / "config.json").write_text(json.dumps(hf_config, indent=2, default=str) + "\n")
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt", "producer": "andactl export"})
        for f in src.iterdir():
            if f.is_file() and f.name not in _OWN_FILES:
                shutil.copyfile(f, tmp / f.name)
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
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
