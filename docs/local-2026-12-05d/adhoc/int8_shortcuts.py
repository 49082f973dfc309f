"""What INT8 shortcut matrices would cost: the whole chain's artifact with every SliceGPT shortcut
rounded to int8 per output column (absmax scale, float32 scale) and back, WikiText-2 first 10
windows in float32, against the same model unchanged. A simulation: nothing is stored."""
import sys, torch, andactl
from andactl.data.datasets import load_text_rows
from andactl.evaluation.perplexity import perplexity

path = sys.argv[1]
rows = load_text_rows("wikitext2", "test", None)
for mode in ("as stored", "int8 per column"):
    model, tok = andactl.load(path, dtype="float32")
    if mode != "as stored":
        with torch.no_grad():
            for layer in model.model.layers:
                for name in layer.shortcuts:
                    S = getattr(layer, name)
                    scale = S.abs().amax(dim=0, keepdim=True).clamp_min(1e-12) / 127
                    S.copy_((S / scale).round().clamp(-127, 127) * scale)
    r = perplexity(model, tok, rows, limit=10)
    print(f"{mode}: ppl {r.ppl:.3f} on {r.windows} windows")
