"""Budgets and quotas: fixed windows aligned to their period, checked and counted at once.

`RELAY_BUDGET=500/day` allows 500 creations from 00:00 to 24:00 UTC, then 500 more:
windows are *fixed* and aligned to the period since the Unix epoch (an hour
window starts on the hour). A fixed window is one counter per window, so the
check-and-increment is one atomic `Store.take` over every cap a create touches
(grant uses, the deployment budget, the visitor's quota): concurrent creates in
any number of workers never overshoot, and a refusal counts nothing. A refusal's
`Retry-After` is the time until the window ends.

`RELAY_BUDGET_SECONDS` caps upstream compute in the same windows: the seconds of
every prediction that finished in this window (`metrics.predict_time`, else its
completed_at - started_at), plus each running prediction's time since its
`started_at` (or the window's start, if later). It is checked before a create,
not reserved: nobody knows in advance how long a prediction will run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ..config import Rate
from ..errors import RelayError
from .grants import Grant
from .store import Limit, Store

__all__ = ["Budgets", "Rate", "SpendRefused"]

RUNNING = "started"  # table: upstream id -> started_at (unix seconds) of running predictions


class SpendRefused(RelayError):
    status = 429


def _epoch(text: object) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class Budgets:
    def __init__(self, store: Store, budget: Rate | None, seconds: Rate | None, quota: Rate | None) -> None:
        self._store = store
        self.budget = budget
        self.seconds = seconds
        self.quota = quota

    # -- creations ---------------------------------------------------------------
    def take(self, visitor_keys: Sequence[str], grant: Grant | None, now: float | None = None) -> list[str]:
        """Count one creation against every cap, or raise SpendRefused; the keys to give back."""
        now = time.time() if now is None else now
        self.check_seconds(now)
        limits: list[Limit] = []
        reasons: list[tuple[str, str, float | None]] = []
        if grant is not None and grant.max is not None:
            limits.append((f"grant:{grant.key}", grant.max, max(60.0, grant.exp - now + 60)))
            reasons.append(("grant_exhausted", "This grant has been used as many times as it allows.", None))
        if self.budget is not None:
            start, left = self.budget.window(now)
            limits.append((f"budget:{start}", self.budget.limit, self.budget.period + 60))
            reasons.append(("budget_exhausted", "This site has used up its prediction budget for now; "
                            f"try again in {_wait(left)}.", left))
        if self.quota is not None:
            start, left = self.quota.window(now)
            for key in visitor_keys:
                limits.append((f"quota:{start}:{key}", self.quota.limit, self.quota.period + 60))
                reasons.append(("quota_exceeded", "You have started as many predictions as this site allows "
                                f"for now; try again in {_wait(left)}.", left))
        refused = self._store.take(limits)
        if refused >= 0:
            code, message, retry = reasons[refused]
            raise SpendRefused(message, code=code, retry_after=retry)
        return [key for key, _limit, _ttl in limits]

    def give_back(self, keys: Sequence[str]) -> None:
        """Undo a `take` whose create never reached upstream."""
        self._store.give_back(keys)

    # -- compute seconds ---------------------------------------------------------
    def check_seconds(self, now: float) -> None:
        if self.seconds is None:
            return
        used = self.seconds_used(now)
        if used >= self.seconds.limit:
            _start, left = self.seconds.window(now)
            raise SpendRefused("This site has used up its compute budget for now; "
                               f"try again in {_wait(left)}.", code="budget_exhausted", retry_after=left)

    def seconds_used(self, now: float | None = None) -> float:
        if self.seconds is None:
            return 0.0
        now = time.time() if now is None else now
        start, _left = self.seconds.window(now)
        used = self._store.count(f"seconds:{start}")
        for value in self._store.table_all(RUNNING).values():
            started = float(value)
            used += max(0.0, now - max(started, start))
        return used

    def observe(self, prediction: Mapping[str, Any], terminal: bool) -> None:
        """Note a prediction's state: its start (running time counts) and, once, its end."""
        if self.seconds is None:
            return
        prediction_id = str(prediction.get("id"))
        started = _epoch(prediction.get("started_at"))
        if not terminal:
            if started is not None and self._store.table_get(RUNNING, prediction_id) is None:
                self._store.table_set(RUNNING, prediction_id, repr(started))
            return
        if not self._store.claim(f"counted:{prediction_id}", "1", 2 * 86400):
            return
        self._store.table_pop(RUNNING, prediction_id)
        metrics = prediction.get("metrics")
        seconds = metrics.get("predict_time") if isinstance(metrics, dict) else None
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            completed = _epoch(prediction.get("completed_at"))
            seconds = (completed - started) if started is not None and completed is not None else 0.0
        start, _left = self.seconds.window(time.time())
        if seconds > 0:
            self._store.add(f"seconds:{start}", float(seconds), self.seconds.period + 60)

    # -- reporting ---------------------------------------------------------------
    def status(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        out: dict[str, Any] = {}
        if self.budget is not None:
            start, left = self.budget.window(now)
            used = self._store.count(f"budget:{start}")
            out["creations"] = {"limit": self.budget.limit, "used": used,
                                "remaining": max(0.0, self.budget.limit - used), "resets_in": math.ceil(left)}
        if self.seconds is not None:
            _start, left = self.seconds.window(now)
            used = round(self.seconds_used(now), 3)
            out["seconds"] = {"limit": self.seconds.limit, "used": used,
                              "remaining": max(0.0, self.seconds.limit - used), "resets_in": math.ceil(left)}
        if self.quota is not None:
            out["quota"] = {"limit": self.quota.limit, "period_seconds": self.quota.period}
        return out


def _wait(seconds: float) -> str:
    seconds = max(1, math.ceil(seconds))
    if seconds < 120:
        return f"{seconds} seconds"
    if seconds < 7200:
        return f"{math.ceil(seconds / 60)} minutes"
    return f"{math.ceil(seconds / 3600)} hours"
