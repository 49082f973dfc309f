"""Prints RSS / HWM at the recover pass's phases (scratch)."""
import sys, time, threading
import andactl.passes.recover as rec
import andactl.passes.recover_topk as rt
import andactl.passes.recover_train as tr

def mem():
    d = dict(l.split(":", 1) for l in open("/proc/self/status"))
    return f"RSS {int(d['VmRSS'].split()[0])/1e6:.2f} GB HWM {int(d['VmHWM'].split()[0])/1e6:.2f} GB"

def say(what): print(f"[{time.strftime('%X')}] {what}: {mem()}", file=sys.stderr, flush=True)

orig_parked = rt.parked
import contextlib
@contextlib.contextmanager
def parked(model, device):
    say("before park")
    with orig_parked(model, device):
        say("parked")
        yield
        say("before unpark")
    say("unparked")
rt.parked = parked
orig_load = rec.Recover._load_teacher
def load(ctx, source):
    say("before teacher load"); t = orig_load(ctx, source); say("teacher loaded"); return t
rec.Recover._load_teacher = staticmethod(load)
orig_tt = rt.teacher_targets
def tt(*a, **k):
    r = orig_tt(*a, **k); say("targets done"); return r
rt.teacher_targets = tt
orig_train = tr.train
def train(*a, **k):
    say("train start"); r = orig_train(*a, **k); say("train end"); return r
tr.train = train
orig_bl = tr.batch_loss
def bl(*a, **k):
    r = orig_bl(*a, **k); say("batch loss"); return r
tr.batch_loss = bl

from andactl.cli.main import cli
cli()
