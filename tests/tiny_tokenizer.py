"""A real (serializable) HF fast tokenizer with one token per character, for offline tests."""
from __future__ import annotations


def char_tokenizer():
    """ASCII printable characters and "\\n" map to ids 2..97; anything else is [UNK] = 0."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "[PAD]": 1}
    for i in range(32, 127):
        vocab[chr(i)] = len(vocab)
    vocab["\n"] = len(vocab)
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Split(Regex("[\\s\\S]"), behavior="isolated")
    tk.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", pad_token="[PAD]", eos_token="[PAD]")
