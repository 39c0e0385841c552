"""The SSE body generator (relay/streams.py) against the in-process hub."""

from __future__ import annotations

from relay.hub import MemoryHub
from relay.streams import HEARTBEAT, StreamLimits, event_stream


def test_done_published_between_the_replay_and_the_first_read_is_sent_at_once() -> None:
    # service.stream reads the replay before the response starts; the generator attaches only
    # when the server first runs it. What is published in between wakes nobody, and when it is
    # the last event (`done`) nothing later would: the stream must look once after attaching.
    hub = MemoryHub()
    pid = "p-race"
    hub.publish(pid, "snapshot", {"id": pid, "status": "processing"})
    replay = hub.replay(pid, None)
    hub.publish(pid, "snapshot", {"id": pid, "status": "succeeded"})
    hub.publish(pid, "done", {"id": pid, "status": "succeeded"})
    body = event_stream(hub, [pid], [replay], StreamLimits(heartbeat=0.2, max_age=600), multiplexed=False)
    first = next(body)
    assert b'"status":"processing"' in first and b"event: done" not in first
    second = next(body)  # a heartbeat here (after 0.2 s) is the lost wake-up
    assert second != HEARTBEAT
    assert b'"status":"succeeded"' in second and b"event: done" in second
    assert list(body) == []  # and the stream ends after `done`
    assert hub.open_streams() == 0
