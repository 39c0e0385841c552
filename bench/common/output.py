"""Machine facts, statistics, progress lines and results shared by the benchmarks.

A script saves its raw results to bench/results/<name>.json and its plot to
docs/<name>.png (docs/benchmarks.md shows the plots). Saving does not touch the
report: `python -m bench.report` rewrites docs/benchmarks.md from the JSON files.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
RESULTS = ROOT / "bench" / "results"


def progress(message: str) -> None:
    """A one-line progress message on stderr (stdout keeps the numbers), above any progress bar."""
    from tqdm import tqdm

    tqdm.write(f"  .. {message}", file=sys.stderr)


def bar(total: int, desc: str, unit: str = "it") -> Any:
    """A tqdm progress bar on stderr for `total` steps of a benchmark."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=True)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between the closest ranks."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99, max and mean of latencies, in milliseconds."""
    return {"n": len(seconds), "p50_ms": percentile(seconds, 50) * 1000, "p90_ms": percentile(seconds, 90) * 1000,
            "p99_ms": percentile(seconds, 99) * 1000, "max_ms": max(seconds) * 1000,
            "mean_ms": statistics.fmean(seconds) * 1000}


def save_plot(figure: Any, name: str) -> Path:
    """Write a matplotlib figure as docs/<name> (PNG) and close it."""
    import matplotlib.pyplot as plt

    path = DOCS / name
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no display on the benchmark machine)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def machine() -> dict[str, Any]:
    """The facts a reader needs to compare numbers across machines."""
    free = subprocess.run(["free", "-h"], capture_output=True, text=True, check=False).stdout.strip()
    return {
        "nproc": int(subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
                     or os.cpu_count() or 0),
        "free_h": free,
        "memory_total_bytes": psutil.virtual_memory().total,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "gevent": _version("gevent"),
        "greenlet": _version("greenlet"),
        "gunicorn": _version("gunicorn"),
        "flask": _version("flask"),
        "httpx": _version("httpx"),
        "replicate": _version("replicate"),
        "uvicorn": _version("uvicorn"),
        "sse_starlette": _version("sse-starlette"),
        "flask_sse": _version("flask-sse"),
        "redis_py": _version("redis"),
        "redis_server": _redis_server_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "git": _git_state(),
    }


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def _redis_server_version() -> str:
    try:
        out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return "not installed"
    return next((part.split("=", 1)[1] for part in out.split() if part.startswith("v=")), out.strip())


def _git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return result.stdout

    status = git("status", "--porcelain", "--", "relay", "wsgi.py", "gunicorn.conf.py", "requirements.txt")
    return {"commit": git("rev-parse", "HEAD").strip(),
            "uncommitted_app_files": [line[3:] for line in status.splitlines() if line.strip()]}


def summarize(values: Sequence[float]) -> dict[str, float]:
    """Median and spread of repeated measurements."""
    return {
        "median": statistics.median(values),
        "mean": statistics.fmean(values),
        "min": min(values),
        "max": max(values),
        "spread": max(values) - min(values),
    }


def write_json(name: str, payload: Mapping[str, Any]) -> Path:
    path = RESULTS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path


def save_results(name: str, payload: Mapping[str, Any],
                 plot: Callable[[Mapping[str, Any]], Path] | None = None) -> None:
    """Write a benchmark's raw results (bench/results/) and plot (docs/), and say where."""
    written = [write_json(name, payload)]
    if plot is not None:
        written.append(plot(payload))
    print("\nwrote " + ", ".join(str(Path(p).relative_to(ROOT)) for p in written)
          + "; `python -m bench.report` rewrites docs/benchmarks.md from the results")


def results_header(benchmark: str, info: Mapping[str, Any]) -> dict[str, Any]:
    """What every results file starts with: which benchmark, how it was started, on what machine."""
    return {"benchmark": benchmark, "command": " ".join([f"python -m bench.{benchmark}", *sys.argv[1:]]),
            "machine": info}


def retry(action: Callable[[], Any], attempts: int = 3, pause: float = 1.0) -> Any:
    """Run `action`, retrying a few times on errors (the machine is shared and noisy)."""
    for attempt in range(attempts):
        try:
            return action()
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(pause)
    raise AssertionError("unreachable")
