"""Profile a few recover steps (scratch)."""
import sys, time, torch
from torch.profiler import profile, ProfilerActivity
from andactl.cli.main import main
sys.argv = ["andactl"] + sys.argv[1:]
import andactl.passes.recover_train as rt
orig = rt.train
def wrapped(*a, **k):
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        h = orig(*a, **k)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=35), file=sys.stderr)
    return h
rt.train = wrapped
try:
    main()
except SystemExit:
    pass
