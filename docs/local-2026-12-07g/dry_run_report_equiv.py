"""Stop 59: the dry-run reports before (4481090, extracted with git archive) and after the shared report
module (andactl/dry_run/report.py) for 8 recipes at fixed rates, each in its own interpreter (started in that tree, so that it imports that tree's andactl). Expected:
JSON-equal except that the streamed reports now carry "rates_probed" like the in-memory ones.
Run from the repository root:  python docs/local-2026-12-07g/dry_run_report_equiv.py
"""
import json, os, subprocess, sys, tempfile

CASES = r'''
from types import SimpleNamespace
import json
from andactl.dry_run.estimate import estimate
from andactl.recipe import Recipe
RATES = {"run": 4e10, "float32": 4e10, "float64": 2e10, "autocast": 3e11}
cases = [
    ("smollm2-135m", [{"pass": "fuse_norms"}, {"pass": "rotate", "ratio": 0.25}, {"pass": "slice"}], {"samples": 16, "seqlen": 1024, "dataset": "mix"}, {}),
    ("smollm2-135m", [{"pass": "fuse_norms"}, {"pass": "rotate", "ratio": 0.25, "basis": "fisher"}, {"pass": "slice"}], {"samples": 16, "seqlen": 1024}, {}),
    ("smollm2-135m", [{"pass": "fuse_norms"}, {"pass": "rotate", "ratio": 0.25}, {"pass": "slice"}], {}, {"stream": True}),
    ("/work/runs56/def", [{"pass": "quantize_weights", "method": "gptq"}, {"pass": "anda_search"}, {"pass": "pack"}, {"pass": "quantize_tables"}], {}, {}),
    ("/work/runs56/def", [{"pass": "quantize_weights"}, {"pass": "pack"}, {"pass": "quantize_tables"}], {}, {"stream": True}),
    ("/work/runs56/def", [{"pass": "quantize_weights", "method": "gptq"}, {"pass": "pack"}], {}, {"stream": True, "spill_activations": True}),
    ("/work/runs56/fmix", [{"pass": "recover", "full": True, "train_data": "mix", "steps": 120}], {}, {}),
    ("smollm2-135m", [{"pass": "prune_mlp", "ratio": 0.2}], {}, {}),
]
out = []
for model, passes, cal, extra in cases:
    o = {"model": model, "output": "/tmp/eq_out", "dtype": "float32", "device": "cpu", "stream": False, "spill_activations": False, **extra}
    out.append(estimate(Recipe(passes=passes, calibration=cal or None), SimpleNamespace(**o), timing=True, rates=dict(RATES)))
print(json.dumps(out))
'''

def run(pythonpath):
    env = {**os.environ, "PYTHONPATH": pythonpath}
    return json.loads(subprocess.run([sys.executable, "-c", CASES], env=env, cwd=pythonpath, capture_output=True, text=True, check=True).stdout)

old_dir = tempfile.mkdtemp()
subprocess.run(f"git archive 4481090 andactl | tar -x -C {old_dir}", shell=True, check=True)
old, new = run(old_dir), run(os.getcwd())
bad = 0
for a, b in zip(old, new):
    extra = set(b) - set(a)
    if b.get("streamed"):
        assert extra == {"rates_probed"}, extra
        b = {k: v for k, v in b.items() if k != "rates_probed"}
    same = json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    bad += not same
    print(a["model"], [r["pass"] for r in a["passes"]], "streamed" if a.get("streamed") else "in memory", a["device"],
          "same" if same else "DIFFERENT", a["seconds"], a["peak_host_ram_gb"])
sys.exit(bad)
