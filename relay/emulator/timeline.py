"""Where a prediction stands at a given moment, computed from its record alone.

A demo prediction is a fixed schedule: it boots for `boot_delay` seconds,
then completes one unit of work (an image step, a text token) every `delay`
seconds. Given the create time, an optional cancel time and "now", the
status and the number of finished units follow by arithmetic, so any process
answers the same without sharing memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TERMINAL = frozenset({"succeeded", "failed", "canceled"})


@dataclass(frozen=True)
class Phase:
    status: str
    started_at: float | None
    completed_at: float | None
    done: int  # units finished (frozen at the cancel or failure point)


@dataclass(frozen=True)
class Timeline:
    created_at: float
    boot_delay: float
    delay: float  # seconds per unit
    units: int
    fail_at: int | None = None  # 1-based unit that fails, if it is ever reached

    @property
    def started_at(self) -> float:
        return self.created_at + self.boot_delay

    @property
    def _failing(self) -> bool:
        return self.fail_at is not None and self.fail_at <= self.units

    @property
    def _last_unit(self) -> int:
        """Units that can finish: all of them, or those before the failing one."""
        if self.fail_at is not None and self._failing:
            return self.fail_at - 1
        return self.units

    @property
    def ends_at(self) -> float:
        """When the prediction succeeds or fails if nobody cancels it."""
        return self.started_at + (self._last_unit + (1 if self._failing else 0)) * self.delay

    def _done_at(self, t: float) -> int:
        if t < self.started_at:
            return 0
        if self.delay <= 0:
            return self._last_unit
        return max(0, min(self._last_unit, math.floor((t - self.started_at) / self.delay)))

    def phase(self, now: float, canceled_at: float | None = None) -> Phase:
        # A cancel only counts if it came before the natural end; a late one
        # (written by a racing process) loses to the outcome already reached.
        if canceled_at is not None and canceled_at < self.ends_at:
            started = self.started_at if canceled_at >= self.started_at else None
            if now < canceled_at:  # asking about a moment before the cancel
                return self.phase(now)
            return Phase("canceled", started, canceled_at, self._done_at(canceled_at))
        if now < self.started_at:
            return Phase("starting", None, None, 0)
        if now < self.ends_at:
            return Phase("processing", self.started_at, None, self._done_at(now))
        status = "failed" if self._failing else "succeeded"
        return Phase(status, self.started_at, self.ends_at, self._last_unit)

    def next_change(self, now: float) -> float | None:
        """The next moment the phase changes by itself, or None once it ends."""
        if now < self.started_at:
            return self.started_at
        if now >= self.ends_at:
            return None
        if self.delay <= 0:
            return self.ends_at
        following = self.started_at + (self._done_at(now) + 1) * self.delay
        return min(max(following, now), self.ends_at)
