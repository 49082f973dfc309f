"""python run_mix.py ANDACTL-ARGS...: the CLI with alpaca calibration replaced by half alpaca, half text
sampled from the model itself (PCA on a 50/50 mix; measured, not a feature)."""
import dataclasses, sys, torch
import andactl.data.calibration as C
orig = C.build_calibration

def mixed(cfg, tokenizer, data_dir, model=None, device="cpu"):
    if cfg.dataset != "alpaca":
        return orig(cfg, tokenizer, data_dir, model, device)
    half = cfg.samples // 2
    a = orig(dataclasses.replace(cfg, samples=half), tokenizer, data_dir, model, device)
    s = orig(dataclasses.replace(cfg, dataset="self", samples=cfg.samples - half), tokenizer, data_dir, model, device)
    ids = torch.cat([a.input_ids, s.input_ids])
    print(f"calibration: {a.input_ids.shape[0]} alpaca + {s.input_ids.shape[0]} self sequences", file=sys.stderr)
    return C.CalibrationData(ids, torch.ones_like(ids), cfg.batch_size)

C.build_calibration = mixed
from andactl.cli.main import main
sys.argv = ["andactl"] + sys.argv[1:]
main()
