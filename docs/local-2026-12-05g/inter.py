"""Scratch: `andactl recover --method kd --full` plus an intermediate-layer loss: each student decoder layer's
output (432 wide, in the basis of the next layer's input) against the teacher's (576 wide) mapped into that basis,
P_j = lstsq(teacher q/k/v of layer j with its input norm folded in, the sliced student's q/k/v of layer j) (what
rotate + slice did: W_s = (W_t diag(g)) Q_j[:, :d']), as a relative squared error averaged over layers, weighted
by INTER (env). Usage: INTER=0.1 python inter.py recover ARGS..."""
import os
import sys

import torch

import andactl.passes.recover_train as rt

LAMBDA = float(os.environ.get("INTER", "0.1"))
STATE = {"P": None, "s": [], "t": [], "hooks": False}


def _out(o):
    return o[0] if isinstance(o, tuple) else o


def _projections(student, teacher):
    ps = []
    for j in range(1, len(student.layers)):
        ls, lt = student.layers[j], teacher.layers[j]
        ad_s, ad_t = student.adapter, teacher.adapter
        w_s = torch.cat([m.weight.float() for m in ad_s.attn_inputs(ls)], 0)
        g = ad_t.attn_norm(lt).weight.float()
        w_t = torch.cat([m.weight.float() for m in ad_t.attn_inputs(lt)], 0) * g
        p = torch.linalg.lstsq(w_t, w_s).solution  # [576, d']
        err = ((w_t @ p - w_s).norm() / w_s.norm()).item()
        ps.append(p)
        if j in (1, len(student.layers) - 1):
            print(f"inter: layer {j} basis fit rel err {err:.2e}, P {tuple(p.shape)}", file=sys.stderr)
    return ps


def _hooks(student, teacher):
    for l in list(student.layers)[:-1]:
        l.register_forward_hook(lambda m, a, o: STATE["s"].append(_out(o)))
    for l in list(teacher.layers)[:-1]:
        l.register_forward_hook(lambda m, a, o: STATE["t"].append(_out(o)))


_orig_batch_loss = rt.batch_loss
_orig_student_init = rt.Student.__init__


def student_init(self, model, adapter):
    _orig_student_init(self, model, adapter)
    self.adapter = adapter


rt.Student.__init__ = student_init


def batch_loss(student, teacher, ids, s, stats):
    if STATE["P"] is None:  # first call: the held-out loss before any step, on the sliced weights
        with torch.no_grad():
            STATE["P"] = _projections(student, teacher)
        _hooks(student, teacher)
    STATE["s"].clear(); STATE["t"].clear()
    loss = _orig_batch_loss(student, teacher, ids, s, stats)
    hs, ht = STATE["s"], STATE["t"]
    if len(hs) != len(STATE["P"]) or len(ht) != len(STATE["P"]):
        return loss  # a teacher-less or recomputed call: no intermediate term
    terms = []
    for h_s, h_t, p in zip(hs, ht, STATE["P"]):
        target = h_t.detach().float() @ p
        terms.append(((h_s.float() - target) ** 2).sum(-1).mean() / (target ** 2).sum(-1).mean())
    inter = torch.stack(terms).mean()
    stats["inter"] = float(inter.detach())
    STATE["s"].clear(); STATE["t"].clear()
    return loss + LAMBDA * inter


rt.batch_loss = batch_loss
from andactl.cli.main import main  # noqa: E402

sys.argv = ["andactl"] + sys.argv[1:]
main()
