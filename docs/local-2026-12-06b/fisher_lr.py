"""Scratch (stop 44): `andactl slice ... --basis fisher` with the subspace search's Adam lr / steps changed.
usage: python fisher_lr.py LR ITERS [andactl slice args...]"""
import sys

from andactl.passes import pca

lr, iters = float(sys.argv[1]), int(sys.argv[2])
pca.fisher_basis.__wrapped__.__defaults__ = (iters, lr)  # under torch.no_grad's wrapper
from andactl.cli.main import main

sys.argv = ["andactl", "slice"] + sys.argv[3:]
main()
