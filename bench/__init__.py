"""Relay's benchmarks: each script at this level measures one thing beside a baseline (see README.md).

Run them from the repository root as `python -m bench.<script>`. Kept free of
imports: the load clients (`python -m bench.load.clients`) patch the standard
library with gevent before anything else is imported.
"""
