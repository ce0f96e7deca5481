"""Benchmarks of gradreg: `python -m benchmarks.per_example`, `python -m benchmarks.training`."""
