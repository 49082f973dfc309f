"""Stop 59: piqa / arc_easy / hellaswag acc (500 each) and their mean against dense 50.667 for NAME_zs.json files."""
import json, sys
for v in sys.argv[1:]:
    r = json.load(open(f"{v}_zs.json"))["results"]
    acc = [100 * r[k]["acc"] for k in ("piqa", "arc_easy", "hellaswag")]
    m = sum(acc) / 3
    print(v, " / ".join(f"{a:.1f}" for a in acc), f"{m:.2f} ({100 * m / 50.667:.1f}%)")
