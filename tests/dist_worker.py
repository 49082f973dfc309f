"""Worker of the 2-process gloo test (tests/test_distributed.py): one rank of a SliceGPT + GPTQ
run, an MLP pruning run and a ``basis: fisher`` slicing run on a tiny float64 llama with the
calibration samples sharded over ranks."""
from __future__ import annotations

import os
from pathlib import Path

import torch


def run_rank(rank: int, world: int, port: int, out: str) -> None:
    """Slices (+ GPTQ) the tiny llama as rank ``rank`` and saves this rank's state dict to ``out``."""
    from safetensors.torch import save_file
    from tiny_models import tiny_calibration, tiny_model

    from andactl import distributed
    from andactl.context import PassContext
    from andactl.errors import ConfigError
    from andactl.models.adapters import get_adapter
    from andactl.passes.fuse_norms import FuseNorms
    from andactl.passes.prune_mlp import PruneMLP, PruneMLPConfig
    from andactl.passes.quantize_weights import QuantizeWeights, QuantizeWeightsConfig
    from andactl.passes.rotate import Rotate, RotateConfig
    from andactl.passes.slice import Slice

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    assert distributed.init_from_env("cpu") == "cpu" and distributed.world() == world
    distributed.agree("configuration", b"same everywhere")
    try:
        distributed.agree("configuration", f"rank {rank}".encode())
        disagreement = "none"
    except ConfigError as err:
        disagreement = str(err)
    Path(out, f"disagreement{rank}.txt").write_text(disagreement)
    model, _ = tiny_model("llama", torch.float64)
    cal = distributed.shard(tiny_calibration(samples=8, seqlen=32, batch_size=4))
    ctx = PassContext(model=model, adapter=get_adapter(model), tokenizer=None, _calibration=cal)
    with torch.no_grad():
        FuseNorms().run(ctx)
        rot = Rotate(RotateConfig(ratio=0.25)).run(ctx)
        Slice().run(ctx)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(Path(out, f"sliced{rank}.safetensors")))
        gptq = QuantizeWeights(QuantizeWeightsConfig(method="gptq", group_size=64)).run(ctx)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    state["calibration_tokens"] = torch.tensor([rot["calibration_tokens"], gptq["calibration_tokens"], cal.num_tokens])
    save_file(state, str(Path(out, f"gptq{rank}.safetensors")))
    model, _ = tiny_model("llama", torch.float64)
    ctx = PassContext(model=model, adapter=get_adapter(model), tokenizer=None, _calibration=cal)
    PruneMLP(PruneMLPConfig(ratio=0.25, round_to=8)).run(ctx)
    mlp = {k: v.contiguous() for k, v in model.state_dict().items() if ".mlp." in k}  # what pruning cut
    save_file(mlp, str(Path(out, f"pruned{rank}.safetensors")))
    model, _ = tiny_model("llama", torch.float64)
    ctx = PassContext(model=model, adapter=get_adapter(model), tokenizer=None, _calibration=cal)
    FuseNorms().run(ctx)
    Rotate(RotateConfig(ratio=0.25, basis="fisher")).run(ctx)
    Slice().run(ctx)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(Path(out, f"fisher{rank}.safetensors")))
    distributed.finish()
