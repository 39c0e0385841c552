"""Request counts across processes, for tests and benchmarks.

Each counted request appends one short line to `<state_dir>/requests.log`.
With O_APPEND, writes this small land whole even from many processes, so no
lock is needed; reading the counts aggregates the file.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from pathlib import Path
from typing import Any


class RequestStats:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "requests.log"

    def record(self, method: str, route: str, prediction_id: str | None) -> None:
        line = f"{method}\t{route}\t{prediction_id or ''}\n".encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def reset(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def summary(self) -> dict[str, Any]:
        """`{"<METHOD> <route>": n, ..., "per_prediction": {id: {METHOD: n}}}`."""
        routes: Counter[str] = Counter()
        per_prediction: dict[str, Counter[str]] = {}
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            text = ""
        for line in text.splitlines():
            parts = line.split("\t")
            if len(parts) != 3:
                continue
            method, route, prediction_id = parts
            routes[f"{method} {route}"] += 1
            if prediction_id:
                per_prediction.setdefault(prediction_id, Counter())[method] += 1
        out: dict[str, Any] = dict(sorted(routes.items()))
        out["per_prediction"] = {pid: dict(c) for pid, c in sorted(per_prediction.items())}
        return out
