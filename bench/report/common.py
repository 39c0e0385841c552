"""What the report's sections share: number formats, verdicts, and reading a result file."""

from __future__ import annotations

import json
from typing import Any

from bench.common.output import RESULTS


def ms(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def verdict(met: bool) -> str:
    return "**met**" if met else "**missed**"


def load_result(name: str) -> dict[str, Any] | None:
    """bench/results/<name>, or None when that benchmark has not been run."""
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def machine_facts(result: dict[str, Any]) -> str:
    m = result["machine"]
    git = m["git"]
    dirty = ", ".join(git["uncommitted_app_files"]) or "none"
    return (f"`nproc` {m['nproc']}; Python {m['python']}, gevent {m['gevent']} (greenlet {m['greenlet']}), "
            f"gunicorn {m['gunicorn']}, Flask {m['flask']}, httpx {m['httpx']}, replicate {m['replicate']}"
            + ("".join(f", {name} {m[key]}" for key, name in (
                ("uvicorn", "uvicorn"), ("sse_starlette", "sse-starlette"), ("flask_sse", "Flask-SSE"),
                ("redis_py", "redis-py"), ("redis_server", "redis-server")) if key in m and result.get("benchmark")
                == "alternatives"))
            + "; "
            f"{m['platform']}; load average at start {m['load_average_at_start']}. "
            f"Relay at commit `{git['commit'][:12]}` (uncommitted app files at the time: {dirty}).\n\n"
            f"```\n$ free -h\n{m['free_h']}\n```")
