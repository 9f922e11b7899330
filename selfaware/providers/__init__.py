"""Inspect model providers the suite adds (registered through the `evals/_registry.py` entry point)."""
