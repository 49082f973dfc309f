"""A/B runner (scratch): NOSPLIT=1 turns split_gemm off (torch float32 head GEMMs); NOCASTHOLD=1 casts the
trained weights again in the checkpointed recompute (no recover_train._casts_held); then runs andactl."""
import contextlib
import os
import sys

import andactl.kernels.split_gemm as sg
import andactl.passes.recover_train as rt

if os.environ.get("NOSPLIT"):
    sg.hardware = lambda: False
if os.environ.get("NOCASTHOLD"):
    rt._casts_held = lambda device, amp: contextlib.nullcontext()
from andactl.cli.main import main  # noqa: E402

sys.argv = ["andactl"] + sys.argv[1:]
main()
