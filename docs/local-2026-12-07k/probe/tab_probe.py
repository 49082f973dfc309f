import re, sys, time, threading
def rss():
    return int(re.search(r'VmRSS:\s+(\d+)', open('/proc/self/status').read()).group(1)) // 1000
peak = {"v": 0}
def sampler():
    while True:
        peak["v"] = max(peak["v"], rss()); time.sleep(0.002)
threading.Thread(target=sampler, daemon=True).start()
def wrap(mod, name):
    f = getattr(mod, name)
    def g(*a, **k):
        peak["v"] = 0; before = rss()
        r = f(*a, **k)
        print(f"{name}: before {before} MB, peak inside {peak['v']} MB, after {rss()} MB", file=sys.stderr); return r
    setattr(mod, name, g)
import andactl.formats.table_quant as tq
import andactl.passes.quantize_tables as qt
wrap(tq, "quantize")
for n in ("run", "_one_table", "_finish"):
    if hasattr(qt.QuantizeTables, n): wrap(qt.QuantizeTables, n)
from andactl.cli.main import cli
cli(sys.argv[1:], prog_name="andactl", obj={"started": time.time()})
