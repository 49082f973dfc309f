import re, torch
def rss():
    s = open('/proc/self/status').read()
    return {k: int(re.search(k + r':\s+(\d+)', s).group(1)) // 1000 for k in ('VmRSS', 'VmHWM')}
from andactl.models.loading import load_model
import inspect; print(inspect.signature(load_model))
lm = load_model("smollm2-135m")
m = lm.model if hasattr(lm, "model") else lm[0]
m.eval()
ids = torch.randint(0, 49152, (4, 512))
print('loaded', rss())
with torch.inference_mode():
    h = m.base_model(input_ids=ids, use_cache=False).last_hidden_state
    print('body', rss())
    del h
    out = m(input_ids=ids, use_cache=False)
    print('full forward', rss(), out.logits.dtype, out.logits.numel()*4/1e6, 'MB logits')
    del out
    x = torch.randn(4, 512, 576)
    y = m.lm_head(x)
    print('head only', rss())
