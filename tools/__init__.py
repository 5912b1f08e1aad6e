"""Helpers shared by the tests, the benchmarks and the scale-out demo (not shipped)."""
