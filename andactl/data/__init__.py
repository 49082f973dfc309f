"""Datasets (local data directory first, Hugging Face hub second) and calibration batches."""
