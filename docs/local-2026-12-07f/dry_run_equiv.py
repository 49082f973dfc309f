"""Stop 58: the old andactl/dry_run.py (59c2c08, read with git show) against the package andactl/dry_run/:
the same reports (JSON-equal) for 8 recipes at fixed rates. Run from the repository root:
    python docs/local-2026-12-07f/dry_run_equiv.py
"""
import importlib.util, json, subprocess, sys, tempfile
old_src = subprocess.run(["git", "show", "59c2c08:andactl/dry_run.py"], capture_output=True, text=True, check=True).stdout
old_path = tempfile.NamedTemporaryFile("w", suffix=".py", delete=False)
old_path.write(old_src); old_path.close()
from types import SimpleNamespace
spec = importlib.util.spec_from_file_location("dry_old", old_path.name)
old = importlib.util.module_from_spec(spec); sys.modules["dry_old"] = old; spec.loader.exec_module(old)
from andactl.dry_run.estimate import estimate as new_estimate
from andactl.recipe import Recipe
RATES = {"run": 4e10, "float32": 4e10, "float64": 2e10, "autocast": 3e11}
cases = [
    ("smollm2-135m", [{"pass": "fuse_norms"}, {"pass": "rotate", "ratio": 0.25}, {"pass": "slice"}], {"samples": 16, "seqlen": 1024, "dataset": "mix"}, {}),
    ("smollm2-135m", [{"pass": "fuse_norms"}, {"pass": "rotate", "ratio": 0.25, "basis": "fisher"}, {"pass": "slice"}], {"samples": 16, "seqlen": 1024}, {}),
    ("smollm2-135m", [{"pass": "fuse_norms"}, {"pass": "rotate", "ratio": 0.25}, {"pass": "slice"}], {}, {"stream": True}),
    ("/work/runs56/def", [{"pass": "quantize_weights"}, {"pass": "anda_search"}, {"pass": "pack"}, {"pass": "quantize_tables"}], {}, {}),
    ("/work/runs56/def", [{"pass": "quantize_weights"}, {"pass": "pack"}, {"pass": "quantize_tables"}], {}, {"stream": True}),
    ("/work/runs56/fmix", [{"pass": "recover", "full": True, "train_data": "mix", "steps": 120}], {}, {}),
    ("/work/runs56/fmix", [{"pass": "recover", "teacher_topk": 64, "steps": 40}], {}, {}),
    ("smollm2-135m", [{"pass": "prune_mlp", "ratio": 0.2}], {}, {}),
]
bad = 0
for model, passes, cal, extra in cases:
    opts = SimpleNamespace(**{"model": model, "output": "/tmp/eq_out", "dtype": "float32", "device": "cpu", "stream": False, "spill_activations": False, **extra})
    r = Recipe(passes=passes, calibration=cal or None)
    a = old.estimate(r, opts, timing=True, rates=dict(RATES))
    b = new_estimate(r, opts, timing=True, rates=dict(RATES))
    same = json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    bad += not same
    print(model, [p["pass"] for p in passes], extra, "same" if same else "DIFFERENT", a["seconds"], a["peak_host_ram_gb"])
sys.exit(bad)
