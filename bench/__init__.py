"""Benchmarks for the performance targets of docs/architecture.md (issue #8): each prints a ratio
against a raw baseline measured in the same run. Entry point: ``python -m bench.run``."""
