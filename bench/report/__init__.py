"""The report: docs/benchmarks.md, one module per section (`python -m bench.report` writes it)."""
