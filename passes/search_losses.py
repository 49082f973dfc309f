"""The Anda search's loss kinds (torch-free, so the CLI can offer them without importing torch).

``ppl``: the paper's ``ppl(tuple) / ppl(W4A16) - 1`` on the calibration tokens. ``kl`` (default):
``exp(mean KL(p_W4A16 || p_tuple)) - 1``; measured to hold its tolerance on other text where the
ppl ratio did not (docs/SEARCH.md: at 1%, -0.9% WikiText-2 perplexity vs W4A16, the ppl loss +7.3%).
"""
SEARCH_LOSSES = ("ppl", "kl")
DEFAULT_SEARCH_LOSS = "kl"
