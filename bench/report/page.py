"""docs/benchmarks.md, put together from the sections (one module each) and bench/results/*.json."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common.output import DOCS
from bench.report import alternatives, churn, idle_streams, push_latency, ttfb, upstream_requests
from bench.report.common import load_result, machine_facts

PAGE = DOCS / "benchmarks.md"


# Each section and the results file it is written from, in the page's order.
SECTIONS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("push-latency.json", push_latency.section),
    ("alternatives.json", alternatives.section),
    ("churn.json", churn.section),
    ("ttfb.json", ttfb.section),
    ("upstream-requests.json", upstream_requests.section),
    ("idle-streams.json", idle_streams.section),
]


def write_report() -> Path:
    """docs/benchmarks.md from the results files there are."""
    parts = ["""# Benchmarks

Benchmarks of Relay's design. Each one measures a baseline side by side with Relay in the same
script and run, and reports ratios to it. Everything runs on 127.0.0.1 with no token and no
network. The scripts live in `bench/`, print their numbers with a progress bar, and write their
raw results to `bench/results/*.json` and a plot to `docs/bench-*.png`; this page is generated from
those files by `python -m bench.report`.

Reproduce (from the repository root, with Relay's requirements and `bench/requirements.txt`
installed, and `redis-server` on the PATH for the Flask-SSE baseline):

```sh
python -m bench.push_latency        # polling vs webhooks: latency, GETs, ~3 min
python -m bench.alternatives        # vs sse-starlette and Flask-SSE: memory, fan-out, ~8 min
python -m bench.churn               # 20,000 connect/resume/disconnect cycles, ~6.5 min
python -m bench.ttfb                # time to first byte, ~1 min
python -m bench.upstream_requests   # upstream GETs vs subscribers, ~6 min
python -m bench.idle_streams        # RSS per idle stream vs the naive design, ~3 min
python -m bench.stream_memory       # diagnostic: where a stream's memory goes
python -m bench.report              # rewrite this page from the JSON files
```

The machine is shared and noisy: 2 cores, 24 GB, with other test suites often running at the
same time. Memory per stream and upstream request counts barely depend on that; latencies do,
mostly in their tails. So every benchmark repeats its measurement, interleaves the designs it
compares (a noisy moment hits all of them alike) and reports medians with their spread; latency
tails are pooled over all repeats. Each section ends with the machine's facts at the time of
its run.
"""]
    for name, section in SECTIONS:
        result = load_result(name)
        if result is not None:
            parts.append(section(result))
            parts.append(f"Machine for this run: {machine_facts(result)}\n")
    PAGE.write_text("\n".join(parts))
    return PAGE

