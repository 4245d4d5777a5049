"""Benchmarks, each measured side by side with its baseline in one run (docs/benchmarks.md)."""
