"""A/B runner (scratch): NOSPLIT=1 turns split_gemm off (torch float32 head GEMMs), then runs andactl."""
import os, sys
import andactl.kernels.split_gemm as sg
if os.environ.get("NOSPLIT"):
    sg.hardware = lambda: False
from andactl.cli.main import main
sys.argv = ["andactl"] + sys.argv[1:]
main()
