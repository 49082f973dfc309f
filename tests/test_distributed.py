"""torch.distributed data parallelism: 2 gloo processes (torch.multiprocessing) compute the same
sliced (PCA and fisher bases), GPTQ-quantized and MLP-pruned model as 1 process; bad worlds fail in
one line before any collective."""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from tiny_models import tiny_calibration, tiny_model

from andactl.cli.main import cli
from andactl.context import PassContext
from andactl.models.adapters import get_adapter
from andactl.passes.fuse_norms import FuseNorms
from andactl.passes.prune_mlp import PruneMLP, PruneMLPConfig
from andactl.passes.quantize_weights import QuantizeWeights, QuantizeWeightsConfig
from andactl.passes.rotate import Rotate, RotateConfig
from andactl.passes.slice import Slice

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
FISHER_RANK_TOL = 1e-8  # float64 sums in another order, through fisher_basis's Adam search of the kept subspace


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_ranks_equal_one_process(tmp_path):
    from safetensors.torch import load_file

    import dist_worker

    torch.multiprocessing.spawn(dist_worker.run_rank, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    model, _ = tiny_model("llama", torch.float64)
    ctx = PassContext(model=model, adapter=get_adapter(model), tokenizer=None,
                      _calibration=tiny_calibration(samples=8, seqlen=32, batch_size=4))
    with torch.no_grad():
        FuseNorms().run(ctx)
        Rotate(RotateConfig(ratio=0.25)).run(ctx)
        Slice().run(ctx)
        sliced = {k: v.clone() for k, v in model.state_dict().items()}
        QuantizeWeights(QuantizeWeightsConfig(method="gptq", group_size=64)).run(ctx)
    gptq = model.state_dict()
    ranks = [load_file(str(tmp_path / f"sliced{r}.safetensors")) for r in (0, 1)]
    for name, ref in sliced.items():  # same dims, weights equal to 1e-10 (float64), ranks identical
        assert ranks[0][name].shape == ref.shape, name
        assert (ranks[0][name] - ref).abs().max().item() < 1e-10, name
        assert torch.equal(ranks[0][name], ranks[1][name]), name
    q = [load_file(str(tmp_path / f"gptq{r}.safetensors")) for r in (0, 1)]
    for r in (0, 1):  # Grams and Hessians over all 8x32 tokens; each rank holds 4 samples
        assert q[r].pop("calibration_tokens").tolist() == [256, 256, 128]
    for name, ref in gptq.items():
        assert torch.equal(q[0][name], q[1][name]), name
        assert (q[0][name] - ref).abs().max().item() < 1e-10, name
    for r in (0, 1):
        assert "ranks disagree on the configuration: rank 1 differs from rank 0" in (tmp_path / f"disagreement{r}.txt").read_text()
    model, _ = tiny_model("llama", torch.float64)  # pruning: neuron scores over all ranks' tokens
    PruneMLP(PruneMLPConfig(ratio=0.25, round_to=8)).run(
        PassContext(model=model, adapter=get_adapter(model), tokenizer=None,
                    _calibration=tiny_calibration(samples=8, seqlen=32, batch_size=4)))
    pruned = [load_file(str(tmp_path / f"pruned{r}.safetensors")) for r in (0, 1)]
    mlp = {k: v for k, v in model.state_dict().items() if ".mlp." in k}
    assert sorted(mlp) == sorted(pruned[0]) and len(mlp) == 6
    for name, ref in mlp.items():
        assert torch.equal(pruned[0][name], pruned[1][name]), name
        assert pruned[0][name].shape == ref.shape and (pruned[0][name] - ref).abs().max().item() < 1e-12, name
    model, _ = tiny_model("llama", torch.float64)  # fisher basis: each sequence draws the same labels on any rank
    ctx = PassContext(model=model, adapter=get_adapter(model), tokenizer=None,
                      _calibration=tiny_calibration(samples=8, seqlen=32, batch_size=4))
    FuseNorms().run(ctx)
    Rotate(RotateConfig(ratio=0.25, basis="fisher")).run(ctx)
    Slice().run(ctx)
    fisher = [load_file(str(tmp_path / f"fisher{r}.safetensors")) for r in (0, 1)]
    for name, ref in model.state_dict().items():
        assert torch.equal(fisher[0][name], fisher[1][name]), name
        assert fisher[0][name].shape == ref.shape and (fisher[0][name] - ref).abs().max().item() < FISHER_RANK_TOL, name


def test_world_larger_than_calibration_is_one_line(tmp_path):
    from tiny_tokenizer import char_tokenizer

    model, _ = tiny_model("llama")
    model.save_pretrained(str(tmp_path / "src"))
    char_tokenizer().save_pretrained(str(tmp_path / "src"))
    res = CliRunner().invoke(cli, ["slice", str(tmp_path / "src"), "--ratio", "0.25", "-o", str(tmp_path / "out"),
                                   "--cal-samples", "2", "--cal-seqlen", "16"], env={"WORLD_SIZE": "3", "RANK": "0"})
    assert res.exit_code != 0 and not (tmp_path / "out").exists()
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "world size 3 is larger than the 2 calibration samples" in lines[0]


def test_torchrun_two_ranks_streamed_equals_two_ranks_in_memory(tmp_path, data_dir):
    """`torchrun --nproc-per-node 2 -m andactl slice --stream` (each rank streams and spills its own
    layers; rank 0 writes) writes exactly the artifact of the same 2-rank run in memory. With the
    tests above (2 ranks == 1 process to 1e-10; streamed == in memory, bit for bit, in one process)
    this closes the square. (Through the CLI the tiny character-level calibration has only 16
    distinct tokens, so its PCA bases are degenerate and 1 vs 2 processes is compared in-process.)"""
    import subprocess
    import sys

    from safetensors.torch import load_file
    from tiny_tokenizer import char_tokenizer

    model, _ = tiny_model("llama", torch.float64)
    model.save_pretrained(str(tmp_path / "src"))
    char_tokenizer().save_pretrained(str(tmp_path / "src"))
    args = ["slice", str(tmp_path / "src"), "--ratio", "0.25", "--dtype", "float64", "--storage-dtype", "fp32",
            "--cal-samples", "8", "--cal-seqlen", "32", "--cal-batch-size", "4", "--data-dir", data_dir]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent)}
    for mode in ("--stream", "--no-stream"):
        run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
                              str(_free_port()), "-m", "andactl", "-q", *args, mode, "-o", str(tmp_path / mode.strip("-"))],
                             capture_output=True, text=True, env=env, timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]
    streamed = load_file(str(tmp_path / "stream" / "model.safetensors"))
    in_memory = load_file(str(tmp_path / "no-stream" / "model.safetensors"))
    assert streamed.keys() == in_memory.keys()
    for name in streamed:
        assert torch.equal(streamed[name], in_memory[name]), name
    report = json.loads((tmp_path / "stream" / "report.json").read_text())
    assert report["streamed"] is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["no-stream", "src", "stream"]  # every rank's spill removed
