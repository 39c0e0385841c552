"""The baseline apps the benchmarks compare Relay with, and gunicorn's profiling settings (no imports here:
each app is loaded by gunicorn or uvicorn in a worker whose memory is measured)."""
