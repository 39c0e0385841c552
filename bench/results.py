"""Machine facts, statistics and JSON output shared by the benchmarks."""

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

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def progress(message: str) -> None:
    """A one-line progress indicator on stderr (stdout keeps the numbers)."""
    print(f"  .. {message}", file=sys.stderr, flush=True)


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
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "git": _git_state(),
    }


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


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
    path = DOCS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path


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
