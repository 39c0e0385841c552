"""Honest waits from this deployment's past runs: `estimate` on every snapshot (docs/runs.md).

Per model (and per version when that version has enough history) the latest
succeeded runs give a boot time (created_at -> started_at) and a run time
(metrics.predict_time). The median of each, read from the run records and cached
for a few seconds, turns a snapshot into `start_in` / `finish_in`: seconds from
the snapshot's moment until the expected start and finish (`finish_in` includes
`start_in`). Without history both are null and `based_on` is 0.

The estimate is computed when a state is new. A repeat of the state held (same
snapshot but for the estimate) keeps the held estimate, so the hub still sees a
repeat and sends nothing: estimates never turn a quiet poll into an event.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from .events import LOG_FIELDS
from .records import parse_time

__all__ = ["NO_ESTIMATE", "Estimator"]

NO_ESTIMATE: dict[str, Any] = {"start_in": None, "finish_in": None, "based_on": 0}
_CACHE_SECONDS = 5.0
_ENOUGH_FOR_VERSION = 3

Durations = list[tuple[float | None, float | None]]


class Estimator:
    def __init__(self, durations: Callable[[str, str | None], Durations],
                 clock: Callable[[], float] = time.time) -> None:
        self._durations = durations
        self._clock = clock
        self._cache: dict[tuple[str, str | None], tuple[float, tuple[float | None, float | None, int]]] = {}
        self._lock = threading.Lock()

    def forget(self, model: str) -> None:
        """Drop cached figures of a model (a run of it just succeeded here)."""
        with self._lock:
            for key in [k for k in self._cache if k[0] == model]:
                del self._cache[key]

    def medians(self, model: str, version: str | None) -> tuple[float | None, float | None, int]:
        key = (model, version)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and now - cached[0] < _CACHE_SECONDS:
            return cached[1]
        rows = self._durations(model, version) if version else []
        if len(rows) < _ENOUGH_FOR_VERSION:
            rows = self._durations(model, None)
        boots = [b for b, _ in rows if b is not None]
        runs = [r for _, r in rows if r is not None]
        figures = (statistics.median(boots) if boots else None,
                   statistics.median(runs) if runs else None, len(rows))
        with self._lock:
            self._cache[key] = (now, figures)
        return figures

    def estimate(self, snapshot: Mapping[str, Any], model: str | None, version: str | None) -> dict[str, Any]:
        if model is None:
            return dict(NO_ESTIMATE)
        boot, run, based_on = self.medians(model, version)
        if based_on == 0 or run is None:
            return dict(NO_ESTIMATE)
        status = snapshot.get("status")
        now = self._clock()
        if status == "starting":
            created = parse_time(snapshot.get("created_at"))
            waited = now - created if created is not None else 0.0
            start_in = max(0.0, (boot or 0.0) - waited)
            return _rounded(start_in, start_in + run, based_on)
        if status == "processing":
            started = parse_time(snapshot.get("started_at"))
            running = now - started if started is not None else 0.0
            return _rounded(0.0, max(0.0, run - running), based_on)
        return _rounded(0.0, 0.0, based_on)


def _rounded(start_in: float, finish_in: float, based_on: int) -> dict[str, Any]:
    return {"start_in": round(start_in, 1), "finish_in": round(finish_in, 1), "based_on": based_on}


def same_state(snapshot: Mapping[str, Any], held: Mapping[str, Any] | None) -> bool:
    """True when `snapshot` repeats `held` in everything but the estimate and the log.

    The hub holds a state without its log (a log's growth is a `logs` delta, not a new
    state), so the log fields are left out on both sides."""
    if held is None:
        return False
    ignored = ("estimate", *LOG_FIELDS)
    return ({k: v for k, v in held.items() if k not in ignored}
            == {k: v for k, v in snapshot.items() if k not in ignored})
