"""Format v2: the three ways to open an artifact (andactl.load, transformers from_pretrained, lm-eval)
give the saved model's logits exactly, for dense / sliced / packed tiny llama, qwen2, opt; the
reader never imports the passes; bad artifacts are refused with one line."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_models import FAMILIES, tiny_calibration, tiny_inputs, tiny_model
from tiny_tokenizer import char_tokenizer

import andactl
from andactl.context import PassContext
from andactl.errors import ArtifactError
from andactl.formats.artifact import save_artifact
from andactl.formats.output_dir import EXPORT_RECORD
from andactl.manager import PassManager
from andactl.models.adapters import get_adapter

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("dense", "sliced", "packed", "tables", "sliced_tables")  # tables: `quantize`'s INT8 head/embeddings too
SLICED, PACKED = {"sliced", "packed", "sliced_tables"}, {"packed", "tables", "sliced_tables"}
_CACHE: dict = {}


def _build(family: str, kind: str):
    """(in-memory model, records) for a tiny ``family`` model made ``kind`` by the passes."""
    model, _ = tiny_model(family)
    ctx = PassContext(model=model, adapter=get_adapter(model), tokenizer=char_tokenizer())
    ctx._calibration = tiny_calibration(samples=8, seqlen=32)
    steps = []
    if kind in SLICED:
        steps += [{"pass": "fuse_norms"}, {"pass": "rotate", "ratio": 0.25}, {"pass": "slice"}]
    if kind in PACKED:
        steps += [{"pass": "quantize_weights", "method": "rtn", "group_size": 64, "symmetric": family != "opt"},
                  {"pass": "set_anda_bits", "bits": [6, 5, 4, 7]}, {"pass": "pack"}]
    if kind in ("tables", "sliced_tables"):  # a tied source's head and embeddings become one stored table
        steps += [{"pass": "quantize_tables"}]
    if steps:
        PassManager.from_recipe(steps).run(ctx)
    return ctx.model.eval(), ctx.records


def saved(tmp_path_factory, family: str, kind: str):
    """(in-memory model, artifact path), built once per session."""
    key = (family, kind)
    if key not in _CACHE:
        model, records = _build(family, kind)
        out = save_artifact(tmp_path_factory.mktemp(f"{family}-{kind}") / "a", model, char_tokenizer(),
                            {"base_model": "tiny"}, records=records)
        _CACHE[key] = (model, out)
    return _CACHE[key]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("kind", KINDS)
def test_load_and_from_pretrained_identical_logits(tmp_path_factory, family, kind):
    from transformers import AutoModelForCausalLM

    model, out = saved(tmp_path_factory, family, kind)
    ids = tiny_inputs()
    with torch.no_grad():
        ref = model(ids).logits
        loaded, tok = andactl.load(out)
        assert torch.equal(loaded(ids).logits, ref)
        hf = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32).eval()
        assert torch.equal(hf(ids).logits, ref)
    assert tok("ab").input_ids == char_tokenizer()("ab").input_ids
    cfg = json.loads((out / "config.json").read_text())
    tensors = dict(hf.named_parameters(remove_duplicate=False)) | dict(hf.named_buffers(remove_duplicate=False))
    for alias, target in cfg["andactl"]["tied_aliases"].items():  # a table stored once is one tensor again
        assert tensors[alias] is tensors[target], alias
    assert cfg["model_type"] == "andactl" and cfg["andactl"]["format_version"] == 2
    assert cfg["quantization_config"]["quant_method"] == "andactl"
    groups = cfg["quantization_config"]["config_groups"]
    assert (len(groups) > 0) == (kind in PACKED)
    assert (cfg["andactl"]["slicing"] is not None) == (kind in SLICED)


@pytest.mark.parametrize("family", ["llama", "opt"])
@pytest.mark.parametrize("kind", ["sliced", "packed"])
def test_greedy_generate_with_cache_equals_without(tmp_path_factory, family, kind):
    from transformers import AutoModelForCausalLM

    _, out = saved(tmp_path_factory, family, kind)
    model = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32).eval()
    ids = tiny_inputs(batch=1, seqlen=8)
    kw = dict(max_new_tokens=8, do_sample=False, pad_token_id=0)
    with torch.no_grad():
        cached = model.generate(ids, use_cache=True, **kw)
        uncached = model.generate(ids, use_cache=False, **kw)
    assert cached.shape == (1, 16) and torch.equal(cached, uncached)


def test_reader_never_imports_passes(tmp_path_factory):
    _, out = saved(tmp_path_factory, "llama", "packed")
    code = (f"import sys, andactl; m, t = andactl.load({str(out)!r}); "
            "bad = [n for n in sys.modules if n.startswith('andactl.passes')]; "
            "print('PASSES', bad); assert not bad")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "PASSES []" in res.stdout, res.stderr[-2000:]


def test_unmodified_transformers_fails_loudly(tmp_path_factory):
    _, out = saved(tmp_path_factory, "llama", "sliced")
    code = (f"from transformers import AutoModelForCausalLM\n"
            f"AutoModelForCausalLM.from_pretrained({str(out)!r})")
    res = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True, timeout=300)
    assert res.returncode != 0 and "model type `andactl` but Transformers does not recognize" in res.stderr


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _edit_config(path: Path, fn) -> None:
    cfg = json.loads((path / "config.json").read_text())
    fn(cfg)
    (path / "config.json").write_text(json.dumps(cfg))


def test_wrong_dtype_refused(tmp_path_factory, tmp_path):
    from safetensors.torch import load_file, save_file

    _, out = saved(tmp_path_factory, "llama", "packed")
    bad = _copy(out, tmp_path / "bad")
    state = load_file(str(bad / "model.safetensors"))
    key = "model.layers.0.self_attn.q_proj.weight_scale"
    assert state[key].dtype == torch.float16  # the compact form (formats/int4_storage.py)
    state[key] = state[key].to(torch.bfloat16)  # float16 or float32 only
    save_file(state, str(bad / "model.safetensors"))
    with pytest.raises(ArtifactError, match=r"module 'model.layers.0.self_attn.q_proj'.*dtype BF16.*float(16|32)"):
        andactl.load(bad)


@pytest.mark.parametrize("edit,msg", [
    (lambda c: c["andactl"]["slicing"]["layers"][0].update(mlp_in=65), r"slicing.layers\[0\].mlp_in must be .* in 1..64"),
    (lambda c: c["andactl"]["slicing"]["layers"][1].update(attn_in=40), r"layers\[1\].attn_in is 40, but the residual"),
    (lambda c: c["andactl"]["slicing"]["layers"].pop(), "slicing.head_in is 64, but the last layer outputs 48"),
    (lambda c: (c["andactl"]["slicing"]["layers"].pop(), c["andactl"]["slicing"].update(head_in=48)),
     "slicing has 1 layers, the config 2"),
    (lambda c: c["andactl"]["norms"].update(eps=0), r"norms.eps must be a number in \(0, 1\)"),
    (lambda c: c["andactl"].update(format_version=1), "older than this andactl's version 2; re-run the command"),
    (lambda c: c["quantization_config"]["config_groups"]["group_0"]["input_activations"].update(mantissa_bits=17),
     "mantissa_bits must be an integer in 1..16"),
    (lambda c: c["quantization_config"].update(quant_method="gptq"), "quant_method must be 'andactl'"),
])
def test_impossible_records_refused(tmp_path_factory, tmp_path, edit, msg):
    _, out = saved(tmp_path_factory, "llama", "packed")
    bad = _copy(out, tmp_path / "bad")
    _edit_config(bad, edit)
    with pytest.raises(ArtifactError, match=msg) as err:
        andactl.load(bad)
    assert "\n" not in str(err.value)


def test_lmeval_api_runs_on_artifact(tmp_path_factory, data_dir):
    import lm_eval
    from lm_eval.api.registry import get_model

    from andactl.evaluation.harness import task_manager

    model, out = saved(tmp_path_factory, "llama", "packed")
    assert get_model("andactl").__name__ == "AndactlLM"
    with pytest.MonkeyPatch.context():
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            tm = task_manager(data_dir, ["piqa"], Path(tmp))
            res = lm_eval.simple_evaluate(model="andactl", model_args=f"pretrained={out},device=cpu,max_length=1024", tasks=["piqa"],
                                          limit=4, task_manager=tm, bootstrap_iters=0)
    acc = res["results"]["piqa"]["acc,none"]
    assert 0.0 <= acc <= 1.0 and res["config"]["model"] == "andactl"


def _cli(*args):
    from click.testing import CliRunner

    from andactl.cli.main import cli

    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.parametrize("attention", ["auto", "sdpa"])
@pytest.mark.parametrize("kind", ["dense", "packed"])
def test_generate_streams_greedy_tokens(tmp_path_factory, kind, attention):
    """andactl's decode path (reserved KV cache, decode-attention kernel where the CPU has one) and
    transformers' own give the greedy tokens of transformers' generate on the saved model."""
    from transformers import AutoModelForCausalLM

    _, out = saved(tmp_path_factory, "llama", kind)
    # float32 like the model it is compared with (auto is bfloat16 on CPUs with native bf16)
    res = _cli("generate", out, "--prompt", "hello", "--max-new-tokens", "6", "--backend", "reference",
               "--dtype", "float32", "--attention", attention)
    assert res.exit_code == 0, res.stderr
    assert re.search(r"6 tokens in [0-9.]+ s: first token after [0-9.]+ s, then [0-9.]+ tokens/s \(prompt 5 tokens", res.stderr)
    model = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32).eval()
    tok = char_tokenizer()
    ids = tok("hello", return_tensors="pt").input_ids
    with torch.no_grad():
        want = model.generate(ids, max_new_tokens=6, do_sample=False, pad_token_id=1)
    assert res.stdout == tok.decode(want[0, ids.shape[1]:], skip_special_tokens=True) + "\n"


@pytest.mark.parametrize("family,float_params", [("qwen2", []), ("llama", [("lm_head.pre.weight", 64 * 64, True)])])
def test_generate_on_packed_model_with_int8_tables(tmp_path, family, float_params):
    """Every linear packed and head/embeddings as INT8 tables leaves the model without parameters
    (a tied source keeps one: the map into its single head/embedding table); generate still works
    and gives the greedy tokens of the loaded model's logits."""
    model, _ = tiny_model(family)
    ctx = PassContext(model=model, adapter=get_adapter(model), tokenizer=char_tokenizer())
    ctx._calibration = tiny_calibration(samples=8, seqlen=32)
    PassManager.from_recipe([{"pass": "fuse_norms"}, {"pass": "rotate", "ratio": 0.25}, {"pass": "slice"},
                             {"pass": "quantize_weights", "method": "rtn", "group_size": 64},
                             {"pass": "set_anda_bits", "bits": [6, 5, 4, 7]}, {"pass": "pack"},
                             {"pass": "quantize_tables", "head": "int8", "embeddings": "int8"}]).run(ctx)
    out = save_artifact(tmp_path / "a", ctx.model.eval(), char_tokenizer(), {"base_model": "tiny"}, records=ctx.records)
    res = _cli("generate", out, "--prompt", "hello", "--max-new-tokens", "5", "--backend", "reference",
               "--dtype", "float32")  # the in-process reference below runs float32
    assert res.exit_code == 0, res.stderr
    loaded, tok = andactl.load(out)
    params = list(loaded.named_parameters())  # the reader's empty device anchor, if nothing else
    anchor = [] if float_params else [("andactl_device_anchor", 0, False)]
    assert [(n, p.numel(), p.requires_grad) for n, p in params] == float_params + anchor
    assert loaded.device == torch.device("cpu")
    from andactl.kernels.backend import set_model_backend

    set_model_backend(loaded, "reference", "cpu")
    ids = tok("hello", return_tensors="pt").input_ids
    with torch.no_grad():
        gen = loaded.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=5, do_sample=False)
        for _ in range(5):
            ids = torch.cat([ids, loaded(ids).logits[:, -1:].argmax(-1)], dim=1)
    assert torch.equal(gen, ids)  # andactl.load(...).generate works on a parameter-free model
    assert res.stdout == tok.decode(ids[0, 5:], skip_special_tokens=True) + "\n"


@pytest.mark.parametrize("args,msg", [
    (["--prompt", "x" * 125, "--max-new-tokens", "8"], "prompt is 125 tokens; with --max-new-tokens 8 that exceeds the model's context of 128"),
    (["--prompt", "hi", "--chat"], "no chat template"),
])
def test_generate_bad_input(tmp_path_factory, args, msg):
    _, out = saved(tmp_path_factory, "llama", "dense")
    res = _cli("generate", out, *args)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.exit_code == 2 and len(lines) == 1 and msg in lines[0], res.stderr


def _w4a16(tmp_path_factory, symmetric: bool, tables: bool = False):
    key = ("w4a16", symmetric, tables)
    if key not in _CACHE:
        from transformers import AutoModelForCausalLM
        from tiny_models import tiny_config

        cfg = tiny_config("llama" if symmetric else "opt")
        setattr(cfg, "intermediate_size" if symmetric else "ffn_dim", 128)  # every K a multiple of the group
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(cfg).eval()
        ctx = PassContext(model=model, adapter=get_adapter(model), tokenizer=char_tokenizer())
        ctx._calibration = tiny_calibration(samples=8, seqlen=32)
        PassManager.from_recipe([{"pass": "quantize_weights", "method": "rtn", "group_size": 64, "symmetric": symmetric},
                                 {"pass": "keep_activations"}, {"pass": "pack"}]
                                + ([{"pass": "quantize_tables"}] if tables else [])).run(ctx)
        out = save_artifact(tmp_path_factory.mktemp("w4a16") / "a", ctx.model, char_tokenizer(), {}, records=ctx.records)
        _CACHE[key] = (ctx.model, out)
    return _CACHE[key]


@pytest.mark.parametrize("symmetric", [True, False])
def test_export_compressed_tensors_decompresses_to_our_weights(tmp_path_factory, tmp_path, symmetric):
    pytest.importorskip("compressed_tensors")
    from compressed_tensors.compressors.pack_quantized.base import PackedQuantizationCompressor
    from compressed_tensors.quantization import QuantizationScheme
    from safetensors.torch import load_file

    from andactl.models.anda_linear import AndaLinear

    model, art = _w4a16(tmp_path_factory, symmetric)
    res = _cli("export", art, "--to", "compressed-tensors", "-o", tmp_path / "ct")
    assert res.exit_code == 0, res.stderr
    cfg = json.loads((tmp_path / "ct" / "config.json").read_text())
    qc = cfg["quantization_config"]
    assert qc["quant_method"] == "compressed-tensors" and qc["format"] == "pack-quantized"
    assert cfg["model_type"] == model.config.model_type and "andactl" not in cfg
    state = load_file(str(tmp_path / "ct" / "model.safetensors"))
    packed = {n: m for n, m in model.named_modules() if isinstance(m, AndaLinear)}
    assert packed and all(m.weight_zero_point is None for m in packed.values()) == symmetric
    for group in qc["config_groups"].values():
        scheme = QuantizationScheme(targets=group["targets"], weights=group["weights"])
        for name in group["targets"]:
            local = {k[len(name) + 1:]: v for k, v in state.items() if k.startswith(name + ".")}
            out = PackedQuantizationCompressor.decompress(local, scheme)
            assert torch.equal(out["weight"].float(), packed.pop(name).dequantized_weight())
    assert not packed  # every packed module was exported and checked
    assert (tmp_path / "ct" / "tokenizer.json").is_file()
    record = json.loads((tmp_path / "ct" / EXPORT_RECORD).read_text())
    assert record["source"] == str(art.resolve()) and record["format"] == "compressed-tensors pack-quantized"
    assert ("llm-compressor#1618" in res.stderr) != symmetric  # asymmetric zero points: transformers' limit named
    if not symmetric:  # andactl's commands say so in one line from the config, before transformers' load and report
        for args in (["inspect"], ["eval", "--tasks", "wikitext2", "--limit", "1"]):
            res = _cli(*args[:1], tmp_path / "ct", *args[1:])
            lines = [line for line in res.stderr.splitlines() if line.strip()]
            assert res.exit_code == 2 and len(lines) == 1, res.stderr
            assert "a compressed-tensors export with asymmetric INT4 groups, which transformers cannot open yet" in lines[0]


def test_symmetric_export_opens_in_transformers_with_our_logits(tmp_path_factory, tmp_path):
    """transformers + compressed-tensors decompress a symmetric export into the weights andactl runs."""
    pytest.importorskip("compressed_tensors")
    from transformers import AutoModelForCausalLM

    _, art = _w4a16(tmp_path_factory, True)
    assert _cli("export", art, "--to", "compressed-tensors", "-o", tmp_path / "ct").exit_code == 0
    ours, _ = andactl.load(art, dtype=torch.float32)
    theirs = AutoModelForCausalLM.from_pretrained(str(tmp_path / "ct"), dtype=torch.float32).eval()
    ids = tiny_inputs()
    with torch.no_grad():
        torch.testing.assert_close(theirs(ids).logits, ours(ids).logits, atol=1e-5, rtol=0)


def test_export_of_quantized_tables_writes_their_float_weights(tmp_path_factory, tmp_path):
    """`quantize`'s INT8 head/embedding tables have no compressed-tensors form: the export holds the
    float weights they dequantize to (once, tied, for a shared table); they used to be written as
    andactl's codes, which transformers ignored, starting those weights from random values."""
    pytest.importorskip("compressed_tensors")
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    model, art = _w4a16(tmp_path_factory, True, tables=True)
    assert json.loads((art / "config.json").read_text())["andactl"]["tables"]["shared"]  # tiny llama: tied
    assert _cli("export", art, "--to", "compressed-tensors", "-o", tmp_path / "ct").exit_code == 0
    state = load_file(str(tmp_path / "ct" / "model.safetensors"))
    emb = model.get_input_embeddings()
    table = state["model.embed_tokens.weight"]
    assert table.dtype == state["model.norm.weight"].dtype  # the artifact's float storage dtype
    assert torch.equal(table, emb.dequantized().to(table.dtype))
    assert not [k for k in state if k.endswith(("weight_packed", "weight_scale")) and "layers" not in k]
    assert "lm_head.weight" not in state and json.loads((tmp_path / "ct" / "config.json").read_text())["tie_word_embeddings"]
    ours, _ = andactl.load(art, dtype=torch.float32)
    theirs = AutoModelForCausalLM.from_pretrained(str(tmp_path / "ct"), dtype=torch.float32).eval()
    ids = tiny_inputs()
    with torch.no_grad():  # the tables' fp16 rounding apart, the same model (random weights gave logits off by ~1)
        torch.testing.assert_close(theirs(ids).logits, ours(ids).logits, atol=2e-3, rtol=0)


def test_export_overwrite_replaces_only_an_export(tmp_path_factory, tmp_path):
    """A folder andactl exported is replaced with --overwrite only; a foreign HF folder never."""
    _, art = _w4a16(tmp_path_factory, True)
    out = tmp_path / "ct"
    assert _cli("export", art, "--to", "compressed-tensors", "-o", out).exit_code == 0
    (out / "stale.txt").write_text("from before")
    res = _cli("export", art, "--to", "compressed-tensors", "-o", out)
    assert res.exit_code == 2 and "is an existing export (pass --overwrite" in res.stderr
    assert (out / "stale.txt").is_file()
    res = _cli("export", art, "--to", "compressed-tensors", "-o", out, "--overwrite")
    assert res.exit_code == 0 and not (out / "stale.txt").exists() and (out / EXPORT_RECORD).is_file()
    (out / EXPORT_RECORD).unlink()  # now a plain HF folder: never replaced
    res = _cli("export", art, "--to", "compressed-tensors", "-o", out, "--overwrite")
    assert res.exit_code == 2 and "is not an andactl artifact" in res.stderr and (out / "config.json").is_file()


def test_export_refuses_partial_groups(tmp_path_factory, tmp_path):
    model, _ = tiny_model("llama")  # intermediate size 96: down_proj has K = 96
    ctx = PassContext(model=model, adapter=get_adapter(model), tokenizer=char_tokenizer())
    PassManager.from_recipe([{"pass": "quantize_weights", "method": "rtn", "group_size": 64},
                             {"pass": "keep_activations"}, {"pass": "pack"}]).run(ctx)
    art = save_artifact(tmp_path / "a", model, char_tokenizer(), {}, records=ctx.records)
    res = _cli("export", art, "--to", "compressed-tensors", "-o", tmp_path / "x")
    assert res.exit_code == 2 and "in_features 96, not a multiple of the weight group size 64" in res.stderr
    assert not (tmp_path / "x").exists()


def test_export_refuses_sliced_and_anda(tmp_path_factory, tmp_path):
    for kind, why in (("sliced", "cannot export a sliced (SliceGPT) model"), ("packed", "cannot export a sliced")):
        _, out = saved(tmp_path_factory, "llama", kind)
        res = _cli("export", out, "--to", "compressed-tensors", "-o", tmp_path / kind)
        assert res.exit_code == 2 and why in res.stderr and not (tmp_path / kind).exists()
    model, _ = tiny_model("llama")
    ctx = PassContext(model=model, adapter=get_adapter(model), tokenizer=char_tokenizer())
    PassManager.from_recipe([{"pass": "quantize_weights", "method": "rtn", "group_size": 64},
                             {"pass": "set_anda_bits", "bits": [8, 8, 8, 8]}, {"pass": "pack"}]).run(ctx)
    art = save_artifact(tmp_path / "anda", model, char_tokenizer(), {}, records=ctx.records)
    res = _cli("export", art, "--to", "compressed-tensors", "-o", tmp_path / "x")
    assert res.exit_code == 2 and "cannot export Anda activation quantization" in res.stderr
    assert not (tmp_path / "x").exists()


def test_bfloat16_load_equals_from_pretrained_and_keeps_float32_scales(tmp_path_factory):
    from transformers import AutoModelForCausalLM

    _, out = saved(tmp_path_factory, "llama", "packed")
    ours, _ = andactl.load(out, dtype="bfloat16")
    hf = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.bfloat16).eval()
    for m in (ours, hf):
        q = m.model.layers[0].self_attn.q_proj
        assert q.weight_scale.dtype == torch.float32 and m.model.embed_tokens.weight.dtype == torch.bfloat16
    ids = tiny_inputs()
    with torch.no_grad():
        assert torch.equal(ours(ids).logits, hf(ids).logits)


def test_loaders_pick_the_fast_kernels(tmp_path_factory):
    """andactl.load and from_pretrained set every AndaLinear to the backend 'auto' resolves to (the
    C++ extension when it loads: the fused op, not the slow reference); backend= overrides; an
    unknown backend is refused before the artifact is read."""
    from transformers import AutoModelForCausalLM

    from andactl.errors import ConfigError
    from andactl.kernels.backend import resolve_backend
    from andactl.models.anda_linear import AndaLinear

    _, out = saved(tmp_path_factory, "llama", "packed")
    want = resolve_backend("auto", "cpu").name

    def backends(m):
        return {x.backend for x in m.modules() if isinstance(x, AndaLinear)}

    assert backends(andactl.load(out)[0]) == {want}
    assert backends(AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32)) == {want}
    assert backends(andactl.load(out, backend="reference")[0]) == {"reference"}
    with pytest.raises(ConfigError, match="unknown kernel backend 'fast'"):
        andactl.load(ROOT / "no-such-artifact", backend="fast")


def test_generate_speed_line_keeps_the_prompt_out_of_the_decode_rate():
    from andactl.cli.generate_cmd import speed_line

    # a 2 s prefill, then 4 more tokens 0.25 s apart: 4 tokens/s of decoding, not 5 / 3 s
    assert speed_line(5, 3.0, [12.0, 12.25, 12.5, 12.75, 13.0], 10.0) == \
        "5 tokens in 3.00 s: first token after 2.00 s, then 4.00 tokens/s"
    assert speed_line(1, 0.5, [10.5], 10.0) == "1 token in 0.50 s: 2.00 tokens/s"  # nothing to split
    assert speed_line(0, 0.5, [], 10.0) == "0 tokens in 0.50 s"
