"""Benchmarks: commands that print tables (python -m benchmarks.<area>)."""
