"""``andactl sweep``: a grid over slicing ratio x weight method x Anda tolerance, one record per
point (bytes, cost models, perplexity, wall time), the Pareto frontier and the best point for a budget."""
