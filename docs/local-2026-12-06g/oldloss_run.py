"""Run the CLI with the head loss of an older commit: python oldloss_run.py OLD_RECOVER_LOSS.py ARGS... (stop 50 A/B)."""
import sys, importlib.util
spec = importlib.util.spec_from_file_location("andactl.passes.recover_loss", sys.argv.pop(1))
mod = importlib.util.module_from_spec(spec); sys.modules["andactl.passes.recover_loss"] = mod; spec.loader.exec_module(mod)
from andactl.cli.main import main
sys.argv = ["andactl"] + sys.argv[1:]
main()
