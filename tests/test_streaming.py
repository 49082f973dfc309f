"""Layer-wise streaming (``--stream``, andactl/models/layer_store.py): a streamed slice or quantize
writes the same artifact as the in-memory run; a streamed run's peak RSS is bounded by the largest
layer, not the model; bad input is refused in one line before loading."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file
from tiny_models import tiny_model
from tiny_tokenizer import char_tokenizer

from andactl.cli.main import cli

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
ROOT = Path(__file__).resolve().parent.parent
CAL = ["--cal-samples", "8", "--cal-seqlen", "32", "--cal-batch-size", "4"]


def _source(tmp_path: Path, family: str, dtype=torch.float64) -> Path:
    model, _ = tiny_model(family, dtype)
    src = tmp_path / f"src-{family}"
    model.save_pretrained(str(src))
    char_tokenizer().save_pretrained(str(src))
    return src


def _run(*args) -> None:
    res = CliRunner().invoke(cli, list(args))
    assert res.exit_code == 0, res.stderr


def _artifact(path: Path) -> tuple[dict, dict]:
    config = json.loads((path / "config.json").read_text())
    config["andactl"].pop("provenance")  # timings
    return load_file(str(path / "model.safetensors")), config


def _assert_same_artifact(a: Path, b: Path) -> None:
    (ta, ca), (tb, cb) = _artifact(a), _artifact(b)
    assert ta.keys() == tb.keys()
    for name in ta:
        assert ta[name].dtype == tb[name].dtype and torch.equal(ta[name], tb[name]), name
    assert ca == cb


@pytest.mark.parametrize("shortcuts", ["float", "int8"])
@pytest.mark.parametrize("family", ["llama", "qwen3", "smollm3", "phi3", "phi"])
def test_streamed_slice_equals_in_memory(tmp_path, data_dir, family, shortcuts):
    src = _source(tmp_path, family)
    common = ["slice", str(src), "--ratio", "0.25", "--dtype", "float64", "--storage-dtype", "fp32", "--shortcuts", shortcuts, *CAL]
    _run(*common, "-o", str(tmp_path / "mem"), "--no-stream")
    _run(*common, "-o", str(tmp_path / "str"), "--stream")
    _assert_same_artifact(tmp_path / "mem", tmp_path / "str")
    report = json.loads((tmp_path / "str" / "report.json").read_text())
    assert report["streamed"] is True
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["mem", "str", src.name])  # spill dir removed
    stored = load_file(str(tmp_path / "str" / "model.safetensors"))
    assert any(k.endswith("shortcut_int8") for k in stored) == (shortcuts == "int8")


@pytest.mark.parametrize("family,method,dtype", [("llama", "gptq", "float32"), ("qwen3", "gptq", "float32"),
                                                      ("opt", "rtn", "bfloat16")])
def test_streamed_quantize_equals_in_memory(tmp_path, data_dir, family, method, dtype):
    src = _source(tmp_path, family, torch.float32)
    common = ["quantize", str(src), "--weight-method", method, "--bits", "7", "7", "7", "7", "--group-size", "64",
              "--dtype", dtype, "--cal-samples", "8", "--cal-seqlen", "64", "--cal-batch-size", "4"]
    _run(*common, "-o", str(tmp_path / "mem"), "--no-stream")
    _run(*common, "-o", str(tmp_path / "str"), "--stream")
    _assert_same_artifact(tmp_path / "mem", tmp_path / "str")


def test_max_memory_between_streamed_and_whole_model_streams_automatically(tmp_path, data_dir):
    from types import SimpleNamespace

    from andactl.dry_run.estimate import estimate
    from andactl.recipe import Recipe

    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)  # 12 layers: the whole model clearly outweighs one layer in the estimate
    model = LlamaForCausalLM(LlamaConfig(vocab_size=128, hidden_size=128, intermediate_size=256, num_hidden_layers=12,
                                         num_attention_heads=4, max_position_embeddings=64)).to(torch.float64)
    src = tmp_path / "src"
    model.save_pretrained(str(src))
    char_tokenizer().save_pretrained(str(src))
    recipe = Recipe(passes=[{"pass": "fuse_norms"}, {"pass": "rotate", "ratio": 0.25}, {"pass": "slice"}],
                    calibration={"samples": 8, "seqlen": 32, "batch_size": 4})
    opts = SimpleNamespace(model=str(src), output=str(tmp_path / "o"), dtype="float64", device="cpu", stream=False)
    whole = estimate(recipe, opts)["peak_host_ram_gb"]
    opts.stream = True
    streamed = estimate(recipe, opts)["peak_host_ram_gb"]
    assert streamed < whole
    limit = f"{(streamed + whole) / 2:.4f}"
    _run("slice", str(src), "--ratio", "0.25", "--dtype", "float64", *CAL, "-o", str(tmp_path / "o"), "--max-memory", limit)
    assert json.loads((tmp_path / "o" / "report.json").read_text())["streamed"] is True


def _one_line(res, text: str) -> None:
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.exit_code != 0 and len(lines) == 1 and text in lines[0], res.stderr


def test_stream_refuses_passes_that_walk_the_whole_model(tmp_path):
    src = _source(tmp_path, "llama")
    res = CliRunner().invoke(cli, ["quantize", str(src), "-o", str(tmp_path / "o"), "--stream", *CAL, "--weight-method", "rtn"])  # anda_search
    _one_line(res, "pass 'anda_search' does not support layer-wise streaming (--stream)")
    assert not (tmp_path / "o").exists()


def test_stream_dry_run_refuses_what_the_run_refuses(tmp_path):
    """--stream --dry-run never plans a streamed run that the run itself refuses: a pass that walks
    the whole model, one that streams only with other settings, an artifact as source. The run
    refuses an artifact source before loading too (it did so only at load)."""
    src = _source(tmp_path, "llama")
    art = tmp_path / "art"
    res = CliRunner().invoke(cli, ["slice", str(src), "--ratio", "0.25", *CAL, "-o", str(art)])
    assert res.exit_code == 0, res.stderr
    cases = [
        (["quantize", str(src), "--weight-method", "rtn"], "pass 'anda_search' does not support layer-wise streaming (--stream);"),
        (["slice", str(src), "--ratio", "0.25", "--basis", "fisher"],
         "pass 'rotate' does not support layer-wise streaming (--stream) with these settings;"),
        (["quantize", str(art), "--weight-method", "rtn", "--bits", "8", "8", "8", "8"],
         "layer-wise streaming (--stream) reads HF folders and GGUF files, not andactl artifacts"),
    ]
    for args, text in cases:
        for extra in (["--dry-run"], []):
            res = CliRunner().invoke(cli, [*args, *CAL, "-o", str(tmp_path / "o"), "--stream", *extra])
            _one_line(res, text)
            assert not (tmp_path / "o").exists()


def test_stream_dry_run_reads_no_weights(tmp_path):
    model, _ = tiny_model("llama")
    src = tmp_path / "src"
    model.config.save_pretrained(src)
    (src / "model.safetensors").write_bytes(b"\xff" * 4096)  # any weight read fails
    res = CliRunner().invoke(cli, ["slice", str(src), "--ratio", "0.25", "-o", str(tmp_path / "o"), "--stream",
                                   "--dry-run", "--format", "json"], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["streamed"] is True and not (tmp_path / "o").exists()
    layer = sum(t.numel() for t in model.model.layers[0].state_dict().values()) * 4
    assert report["layer_gb"] == round(layer / 1e9, 3)
    assert report["spill_gb"] == round(report["parameters"] * 4 / 1e9, 3)
    # the whole-model report's fields, all of them, plus the streamed run's own three
    whole = CliRunner().invoke(cli, ["slice", str(src), "--ratio", "0.25", "-o", str(tmp_path / "o"), "--no-stream",
                                     "--dry-run", "--format", "json"], catch_exceptions=False)
    assert whole.exit_code == 0, whole.stderr
    assert set(report) - set(json.loads(whole.stdout)) == {"streamed", "layer_gb", "spill_gb"}
    assert set(json.loads(whole.stdout)) <= set(report) and report["rates_probed"] is True


BIG = dict(vocab_size=512, hidden_size=256, intermediate_size=4096, num_hidden_layers=16, num_attention_heads=4,
           num_key_value_heads=4, tie_word_embeddings=True, max_position_embeddings=64)

WRITE_BIG = """
import sys, torch
from safetensors.torch import save_file
from transformers import LlamaConfig
sys.path.insert(0, sys.argv[2])
from tiny_tokenizer import char_tokenizer
cfg = LlamaConfig(**{big})
cfg.save_pretrained(sys.argv[1]); char_tokenizer().save_pretrained(sys.argv[1])
g = torch.Generator().manual_seed(0)
D, I, V = cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size
t = {{"model.embed_tokens.weight": torch.randn(V, D, generator=g), "model.norm.weight": torch.ones(D)}}
for i in range(cfg.num_hidden_layers):
    p = f"model.layers.{{i}}."
    for n in ("q", "k", "v", "o"):
        t[p + f"self_attn.{{n}}_proj.weight"] = torch.randn(D, D, generator=g) * D ** -0.5
    t[p + "mlp.gate_proj.weight"] = torch.randn(I, D, generator=g) * D ** -0.5
    t[p + "mlp.up_proj.weight"] = torch.randn(I, D, generator=g) * D ** -0.5
    t[p + "mlp.down_proj.weight"] = torch.randn(D, I, generator=g) * I ** -0.5
    t[p + "input_layernorm.weight"] = torch.ones(D)
    t[p + "post_attention_layernorm.weight"] = torch.ones(D)
save_file(t, sys.argv[1] + "/model.safetensors", metadata={{"format": "pt"}})
"""

MEASURE = """
import sys, resource
from andactl.cli.main import cli
import transformers.models.llama.modeling_llama, andactl.passes.rotate, andactl.models.loading, safetensors.torch
def rss(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
base = rss("VmRSS:")
try:
    cli.main(args=sys.argv[1:], standalone_mode=False)
finally:
    print(base, rss("VmHWM:"), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def _streamed_peak(tmp_path: Path, data_dir: Path, layers: int) -> tuple[int, int]:
    """(peak RSS growth of a streamed slice of a random ``layers``-layer BIG llama over the process
    after its imports, bytes of its model.safetensors), measured in a fresh subprocess."""
    src = tmp_path / f"big{layers}"
    subprocess.run([sys.executable, "-c", WRITE_BIG.format(big={**BIG, "num_hidden_layers": layers}), str(src),
                    str(ROOT / "tests")], check=True, capture_output=True)
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    res = subprocess.run([sys.executable, "-c", MEASURE, "-q", "slice", str(src), "--ratio", "0.25", "--stream", "-o",
                          str(tmp_path / f"out{layers}"), "--cal-samples", "4", "--cal-seqlen", "32", "--cal-batch-size", "4",
                          "--data-dir", str(data_dir)],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    base, peak, maxrss = map(int, res.stdout.strip().splitlines()[-1].split())
    assert maxrss >= peak - 4096
    assert (tmp_path / f"out{layers}" / "model.safetensors").is_file()
    return peak - base, (src / "model.safetensors").stat().st_size


def test_streamed_slice_peak_rss_is_bounded_by_the_largest_layer(tmp_path, data_dir):
    from andactl.passes.blockwise import CHUNK_ELEMENTS

    D, I = BIG["hidden_size"], BIG["intermediate_size"]
    layer = (4 * D * D + 3 * D * I) * 4  # float32
    grown12, model_bytes = _streamed_peak(tmp_path, data_dir, 12)
    grown3, _ = _streamed_peak(tmp_path, data_dir, 3)
    assert model_bytes > 12 * layer  # 0.16 GB
    # the layer in flight and its spill/read copy, two float64 bands of the blockwise updates (at
    # most the largest matrix), calibration data and tokenizer, allocator slack: not the model
    band = min(CHUNK_ELEMENTS, D * I) * 8
    assert grown12 < 3 * layer + 2 * band + 96 * 2**20 < model_bytes, (grown12, layer, model_bytes)
    # 9 more layers (122 MB in memory) cost at most a few layers' worth of allocator noise
    assert grown12 - grown3 < 3 * layer, (grown12, grown3, layer)


def test_spilled_activations_equal_ram(tmp_path, data_dir):
    src = _source(tmp_path, "llama")
    common = ["slice", str(src), "--ratio", "0.25", "--dtype", "float64", "--storage-dtype", "fp32", *CAL]
    _run(*common, "-o", str(tmp_path / "ram"), "--no-stream", "--no-spill-activations")
    _run(*common, "-o", str(tmp_path / "disk"), "--no-stream", "--spill-activations")
    _assert_same_artifact(tmp_path / "ram", tmp_path / "disk")
    assert json.loads((tmp_path / "disk" / "report.json").read_text())["activations_spilled"] is True
    q = ["quantize", str(src), "--weight-method", "gptq", "--bits", "7", "7", "7", "7", "--group-size", "64",
         "--cal-samples", "8", "--cal-seqlen", "64", "--cal-batch-size", "4"]
    _run(*q, "-o", str(tmp_path / "qram"), "--no-stream", "--no-spill-activations")
    _run(*q, "-o", str(tmp_path / "qdisk"), "--stream", "--spill-activations")
    _assert_same_artifact(tmp_path / "qram", tmp_path / "qdisk")
    assert not list(tmp_path.glob(".*"))  # spill directories removed


def test_spill_disk_without_room_is_one_line_before_loading(tmp_path, monkeypatch):
    import andactl.dry_run.costs as dry

    model, _ = tiny_model("llama")
    src = tmp_path / "src"
    model.config.save_pretrained(src)
    (src / "model.safetensors").write_bytes(b"\xff" * 4096)  # a real run would fail on these: the refusal comes first
    monkeypatch.setattr(dry, "free_disk", lambda output: 200_000)  # holds the artifact, not the spilled layers too
    res = CliRunner().invoke(cli, ["slice", str(src), "--ratio", "0.25", "-o", str(tmp_path / "o"), "--stream", *CAL])
    _one_line(res, "a streamed run needs about")
    assert "spilled layers and activations" in res.stderr and not (tmp_path / "o").exists()


@pytest.mark.parametrize("symmetric", [True, False])
def test_spilled_int4_weights_round_trip_and_pop_removes_the_file(tmp_path, symmetric):
    from andactl.formats.int4 import quantize_weight_rtn
    from andactl.models.int4_spill import SpilledInt4Weights

    g = torch.Generator().manual_seed(0)
    weights = {f"model.layers.{i}.mlp.down_proj": quantize_weight_rtn(torch.randn(24, 100, generator=g), 64, symmetric)
               for i in range(3)}
    store = SpilledInt4Weights(tmp_path / "int4")
    for name, q in weights.items():
        store[name] = q
    assert list(store) == list(weights) and len(store) == 3 and "model.layers.1.mlp.down_proj" in store
    for name, q in weights.items():
        got = store[name]
        assert (got.group_size, got.in_features) == (q.group_size, q.in_features) == (64, 100)
        assert torch.equal(got.codes, q.codes) and torch.equal(got.scales, q.scales)
        assert (got.zeros is None) == symmetric and (symmetric or torch.equal(got.zeros, q.zeros))
    popped = store.pop("model.layers.0.mlp.down_proj")
    assert torch.equal(popped.codes, weights["model.layers.0.mlp.down_proj"].codes)
    assert len(list((tmp_path / "int4").iterdir())) == 2 and len(store) == 2


def test_run_recipe_streams_from_the_flag_or_the_recipe_key(tmp_path, data_dir):
    src = _source(tmp_path, "llama")
    steps = ("  - {pass: fuse_norms}\n  - {pass: rotate, ratio: 0.25}\n  - {pass: slice}\n"
             "  - {pass: quantize_weights, method: gptq, group_size: 64}\n  - {pass: set_anda_bits, bits: [7, 7, 7, 7]}\n"
             "  - {pass: pack}\n")
    head = f"model: {src}\ndtype: float64\nstorage_dtype: fp32\ncalibration: {{samples: 8, seqlen: 32, batch_size: 4}}\n"
    plain, keyed = tmp_path / "plain.yaml", tmp_path / "keyed.yaml"
    plain.write_text(head + "passes:\n" + steps)
    keyed.write_text(head + "stream: true\npasses:\n" + steps)
    _run("run", str(plain), "-o", str(tmp_path / "mem"), "--no-stream")
    _run("run", str(plain), "-o", str(tmp_path / "str"), "--stream")
    _assert_same_artifact(tmp_path / "mem", tmp_path / "str")
    _run("run", str(keyed), "-o", str(tmp_path / "key"))
    for out, streamed in (("mem", False), ("str", True), ("key", True)):
        assert json.loads((tmp_path / out / "report.json").read_text())["streamed"] is streamed, out
    bad = tmp_path / "bad.yaml"
    bad.write_text(head + "stream: maybe\npasses:\n" + steps)
    res = CliRunner().invoke(cli, ["run", str(bad), "-o", str(tmp_path / "bad")])
    assert res.exit_code != 0 and "'stream' must be true or false" in res.stderr
    assert not (tmp_path / "bad").exists()
