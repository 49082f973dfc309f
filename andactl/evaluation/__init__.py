"""Evaluation: perplexity (GPTQ/SliceGPT convention) and zero-shot tasks through lm-eval."""
