import re, sys, time
def rss():
    s = open('/proc/self/status').read()
    return {k: int(re.search(k + r':\s+(\d+)', s).group(1)) // 1000 for k in ('VmRSS', 'VmHWM')}
import andactl.passes.anda_fakequant as fq
orig_cl, orig_ph, orig_init, orig_call = fq.calibration_loss, fq.predicting_hidden, fq.KLEvaluator.__init__, fq.KLEvaluator.__call__
def cl(*a, **k):
    print('before calibration_loss', rss(), file=sys.stderr); r = orig_cl(*a, **k); print('after calibration_loss', rss(), file=sys.stderr); return r
def init(self, *a, **k):
    print('before KL init', rss(), file=sys.stderr); orig_init(self, *a, **k); print('after KL init', rss(), file=sys.stderr)
n = [0]
def call(self, *a, **k):
    r = orig_call(self, *a, **k); n[0] += 1
    print('after eval', n[0], rss(), file=sys.stderr)
    if n[0] >= 2: raise SystemExit(0)
    return r
fq.calibration_loss = cl; fq.KLEvaluator.__init__ = init; fq.KLEvaluator.__call__ = call
from andactl.cli.main import cli
cli(sys.argv[1:], prog_name="andactl", obj={"started": time.time()})
