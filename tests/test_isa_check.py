"""tests/emu/isa_check.cpp, the torch-free checker of the CPU kernels that bochs_check.sh is to run on
an emulated AVX-512 VNNI CPU (that boot has not worked yet: see the script), builds and passes here
on every level this CPU has (so it cannot rot between emulator runs), and fails when a kernel is
broken (so its PASS means something)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CSRC = ROOT / "kernels" / "csrc"
SOURCES = ("anda_kern.cpp", "anda_pack_avx2.cpp", "anda_gemm_kern.cpp", "anda_gemm_amx.cpp",
           "anda_quant.cpp", "table_kern.cpp")

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")


def _compile(sources: list[Path], out_dir: Path) -> list[Path]:
    """Compile the sources to objects in out_dir, all at once (one g++ per file)."""
    jobs = [(src, out_dir / (src.stem + ".o")) for src in sources]
    procs = [subprocess.Popen(["g++", "-O1", "-std=c++17", f"-I{CSRC}", "-c", str(s), "-o", str(o)],
                              stderr=subprocess.PIPE, text=True) for s, o in jobs]
    for proc in procs:
        assert proc.wait() == 0, proc.stderr.read()
    return [o for _, o in jobs]


def _link(objects: list[Path], out: Path) -> Path:
    subprocess.run(["g++", "-o", str(out), *map(str, objects)], check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def objects(tmp_path_factory) -> list[Path]:
    """Objects of the checker and of the kernel sources, compiled once."""
    return _compile([ROOT / "tests" / "emu" / "isa_check.cpp", *(CSRC / s for s in SOURCES)],
                    tmp_path_factory.mktemp("isa_obj"))


@pytest.fixture(scope="module")
def checker(objects, tmp_path_factory) -> Path:
    return _link(objects, tmp_path_factory.mktemp("isa") / "isa_check")


def _levels(stdout: str) -> dict[str, tuple[int, int]]:
    return {m[0]: (int(m[1]), int(m[2])) for m in re.findall(r"^([a-z0-9-]+): (\d+) checks, (\d+) failed$", stdout, re.M)}


def test_checker_passes_on_this_cpu(checker):
    run = subprocess.run([str(checker)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:]
    levels = _levels(run.stdout)
    detected = re.search(r"^detected=(\S+)", run.stdout, re.M)[1]
    order = ["scalar", "avx2", "avx512", "amx"]
    assert set(levels) == {*order[: order.index(detected) + 1], "amx-emulated"}
    counts = {checks for checks, _ in levels.values()}
    assert len(counts) == 1 and min(counts) > 600, levels  # the same grid at every level
    assert all(failed == 0 for _, failed in levels.values()), levels
    assert run.stdout.rstrip().endswith(f"ISA-CHECK PASS {sum(c for c, _ in levels.values())}")


def test_checker_catches_a_broken_kernel(objects, tmp_path):
    """A scalar micro-kernel with a wrong chunk weight makes the scalar GEMM checks fail."""
    src = (CSRC / "anda_gemm_kern.cpp").read_text()
    assert "tot += s << (7 * c);" in src
    broken = tmp_path / "anda_gemm_kern.cpp"
    broken.write_text(src.replace("tot += s << (7 * c);", "tot += s << (7 * c + 1);"))
    (mutant,) = _compile([broken], tmp_path)
    exe = _link([mutant if o.name == mutant.name else o for o in objects], tmp_path / "isa_check")
    run = subprocess.run([str(exe), "scalar"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 1
    failed = _levels(run.stdout)["scalar"][1]
    assert failed > 0 and "FAIL gemm f32 scalar" in run.stdout and "ISA-CHECK FAIL" in run.stdout


def test_checker_refuses_an_unknown_level(checker):
    run = subprocess.run([str(checker), "nonsense"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "no known level" in run.stderr


def test_amx_probe_builds(objects, tmp_path):
    """benchmarks/amx_probe.cpp (run only on AMX machines) compiles and links against the kernels
    it times, so it is ready when a session has one; without AMX it says so and exits 1."""
    probe = ROOT / "benchmarks" / "amx_probe.cpp"
    (obj,) = _compile([probe], tmp_path)
    kernels = [o for o in objects if o.stem in {Path(s).stem for s in SOURCES} and o.stem != "anda_gemm_amx"]
    exe = _link([obj, *kernels], tmp_path / "amx_probe")
    run = subprocess.run([str(exe), "64", "128", "32", "1"], capture_output=True, text=True, timeout=120)
    if run.returncode == 1:
        assert run.stdout.strip() == "AMX not usable here"
    else:
        assert run.returncode == 0 and "tile ops of amx_gemm only" in run.stdout, run.stdout + run.stderr
