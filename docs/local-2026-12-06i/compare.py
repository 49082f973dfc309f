"""Print each run's --dry-run rows (seconds) beside the measured recover pass (report.json) and wall (/usr/bin/time)."""
import json, re, sys
from pathlib import Path

# usage: python compare.py SUFFIX (estimates in BASE.SUFFIX.json, the run in BASE.report.json / BASE.err)
for dry in sorted(Path(".").glob(f"*.{sys.argv[1]}.json")):
    base = dry.name.split(".")[0]
    d = json.loads(dry.read_text())
    rows = {p["pass"]: p["seconds"] for p in d["passes"]}
    est = sum(v for k, v in rows.items() if k.startswith("recover"))
    rep = Path(f"{base}.report.json")
    if not rep.exists():
        continue
    r = json.loads(rep.read_text())
    p = [p for p in r["passes"] if (p.get("name") or p.get("pass")) == "recover"][0]
    h = p["result"]["history"]
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", Path(f"{base}.err").read_text()).group(1)
    print(f"{base:16s} estimate recover {est:7.1f} s (rows {rows}) total {d['seconds']:.1f} | measured pass "
          f"{p['seconds']:.1f} s, training {h['seconds']:.1f} s, wall {wall} | ratio {est / p['seconds']:.2f}")
