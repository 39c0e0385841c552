"""The shared upstream budget is handed out round robin: 40 busy predictions cannot starve a 41st."""

from __future__ import annotations

import itertools
import threading
from typing import Any

from relay.coordination import LocalCoordination
from relay.feed import Feed
from relay.hub import MemoryHub
from relay.watcher import PollPolicy, Watchers
from testbed import wait_until

BUSY = 40


class _Upstream:
    """Stands in for `Upstream` (the named boundary): records the order of polls.

    Busy predictions change on every poll, so their watchers always want the next one;
    `victim` finishes once `finish` is set.
    """

    def __init__(self) -> None:
        self.polls: list[str] = []
        self.lock = threading.Lock()
        self.finish = threading.Event()

    def get(self, prediction_id: str) -> dict[str, Any]:
        with self.lock:
            self.polls.append(prediction_id)
            count = len(self.polls)
            if prediction_id == "victim" and self.finish.is_set():
                return {"id": prediction_id, "status": "succeeded", "output": "done", "logs": "x"}
        return {"id": prediction_id, "status": "processing", "output": None, "logs": "." * count}


def _largest_gap(polls: list[str], prediction_id: str) -> int:
    """The most polls of other predictions between two consecutive polls of this one."""
    at = [i for i, p in enumerate(polls) if p == prediction_id]
    return max((b - a - 1 for a, b in itertools.pairwise(at)), default=0)


def test_forty_busy_predictions_do_not_starve_another() -> None:
    hub = MemoryHub()
    upstream = _Upstream()
    # 40 polls a second in all (the burst is spent first): far fewer than 41 eager watchers want.
    coordination = LocalCoordination(per_minute=2400)
    watchers = Watchers(hub, Feed(hub), upstream, PollPolicy(base=0.01, jitter=0), idle_timeout=60,  # type: ignore[arg-type]
                        coordination=coordination)
    try:
        for index in range(BUSY):
            watchers.ensure(f"busy{index}")
        watchers.ensure("victim")
        wait_until(lambda: len(upstream.polls) >= 400, timeout=30)
        with upstream.lock:
            upstream.finish.set()
            flipped = len(upstream.polls)
        wait_until(lambda: hub.is_done("victim"), timeout=30)
        with upstream.lock:
            polls = list(upstream.polls)
    finally:
        watchers.close()
    steady = polls[200:]  # past the bucket's initial burst
    gaps = {pid: _largest_gap(steady, pid) for pid in {*steady}}
    # Round robin: between two turns of one prediction, every other takes at most a turn or two.
    assert max(gaps.values()) <= 2 * BUSY, sorted(gaps.items(), key=lambda kv: -kv[1])[:5]
    last_victim_poll = max(i for i, p in enumerate(polls) if p == "victim")
    assert last_victim_poll - flipped <= 2 * BUSY + 1
