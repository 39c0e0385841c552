"""`Watchers.ensure` starts one follower per unfinished prediction, and none for a finished one."""

from __future__ import annotations

import threading

from relay.coordination import LocalCoordination
from relay.feed import Feed
from relay.hub import MemoryHub
from relay.upstream import Upstream
from relay.watcher import PollPolicy, Watchers
from testbed.scripted import Answer, scripted_upstream


class CountingCoordination(LocalCoordination):
    """Every follower gives its lease back when it ends (with Redis, a round trip): count them."""

    def __init__(self) -> None:
        super().__init__()
        self.released: list[str] = []

    def release(self, name: str, prediction_id: str) -> None:
        self.released.append(prediction_id)
        super().release(name, prediction_id)


def test_a_finished_prediction_gets_no_follower() -> None:
    with scripted_upstream([Answer(200, {"id": "p2", "status": "processing", "logs": "", "output": None})]) as fake:
        hub = MemoryHub()
        feed = Feed(hub)
        feed.apply({"id": "p1", "status": "succeeded", "logs": "", "output": "ok"})
        coordination = CountingCoordination()
        watchers = Watchers(hub, feed, Upstream("token", fake.url), PollPolicy(base=0.05), idle_timeout=60,
                            coordination=coordination)
        for _ in range(3):  # as many stream opens of the finished prediction
            watchers.ensure("p1")
        for thread in [t for t in threading.enumerate() if t.name == "watch-p1"]:
            thread.join(5)
        assert coordination.released == [] and watchers.running() == 0
        feed.apply({"id": "p2", "status": "processing", "logs": "", "output": None})
        watchers.ensure("p2")
        watchers.ensure("p2")
        assert watchers.running() == 1  # one follower, however many opens
        watchers.close()
    assert not any(path.endswith("/p1") for _, _, path in fake.arrivals)
