"""Logs as deltas (docs/openapi.yaml), on both hubs: what each viewer is sent, byte for byte.

Each viewer is the real SSE body generator (relay/streams.py) fed by the real
feed (relay/feed.py), so the bytes counted are the bytes a browser would get.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from relay.feed import Feed
from relay.hub import Hub, MemoryHub
from relay.redis_hub import RedisHub
from relay.streams import StreamLimits, event_stream
from testbed import wait_until

LIMITS = StreamLimits(heartbeat=5.0, max_age=600.0)
TAIL = 16384


@pytest.fixture
def pid() -> str:
    return uuid.uuid4().hex


@pytest.fixture(params=["memory", "redis"])
def hub(request: pytest.FixtureRequest) -> Iterator[Hub]:
    made: Hub
    if request.param == "memory":
        made = MemoryHub(tail_bytes=TAIL)
    else:
        made = RedisHub(redis.Redis.from_url(request.getfixturevalue("redis_url")), tail_bytes=TAIL)
    yield made
    made.close()


def parse(raw: bytes) -> list[tuple[str, str, dict[str, Any]]]:
    """(id, kind, data) of every event in SSE bytes (fields as Relay writes them)."""
    events = []
    for block in raw.decode().split("\n\n"):
        fields: dict[str, list[str]] = {}
        for line in block.split("\n"):
            name, sep, value = line.partition(": ")
            if sep and name in ("id", "event", "data"):
                fields.setdefault(name, []).append(value)
        if "data" in fields:
            events.append((fields.get("id", [""])[0], fields.get("event", ["message"])[0],
                           json.loads("\n".join(fields["data"]))))
    return events


class Viewer:
    """One connection: reads what the server writes, reassembles the log like a client must."""

    def __init__(self, hub: Hub, pid: str, resumes: Viewer | None = None) -> None:
        replay = hub.replay(pid, resumes.events[-1][0] if resumes else None)
        self.body = event_stream(hub, [pid], [replay], LIMITS, multiplexed=False)
        self.received = 0
        self.log = resumes.log if resumes else ""
        self.base = resumes.base if resumes else 0
        self.events: list[tuple[str, str, dict[str, Any]]] = []
        self.read()  # the opening bytes (retry, comment)

    def read(self) -> None:
        chunk = next(self.body)
        self.received += len(chunk)
        for event in parse(chunk):
            self.events.append(event)
            _id, kind, data = event
            if kind == "message" and data["logs"] is not None:
                assert data["logs_offset"] + len(data["logs"]) == data["logs_length"]
                self.log = data["logs"]  # a new viewer here always starts at offset 0
                self.base = data["logs_offset"]
            elif kind == "logs":
                assert data["offset"] == self.base + len(self.log), "a delta left a gap or overlapped"
                self.log += data["text"]

    def close(self) -> None:
        self.body.close()


def prediction(pid: str, log: str, status: str = "processing") -> dict[str, Any]:
    return {"id": pid, "status": status, "logs": log, "output": None, "error": None,
            "created_at": "2026-01-01T00:00:00Z", "started_at": "2026-01-01T00:00:01Z"}


def line(n: int) -> str:
    return f"step {n:05d} of the long run: all is well...\n"[:39] + "\n"  # 40 bytes


def test_twenty_viewers_of_a_120_kb_log_get_its_growth_and_reassemble_it(hub: Hub, pid: str) -> None:
    feed = Feed(hub)
    feed.apply(prediction(pid, ""))
    viewers = [Viewer(hub, pid) for _ in range(20)]
    for viewer in viewers:
        viewer.read()  # the first snapshot
    log = ""
    for n in range(3000):
        log += line(n)
        feed.apply(prediction(pid, log))
        for viewer in viewers:
            viewer.read()
    feed.apply(prediction(pid, log, "succeeded"))
    for viewer in viewers:
        while viewer.events[-1][1] != "done":
            viewer.read()
    assert len(log.encode()) == 120_000
    for viewer in viewers:
        assert viewer.log == log
        assert viewer.received <= 3 * (len(log.encode()) + 300 * 3000)


def test_a_late_joiner_gets_the_tail_and_a_resumer_exactly_what_it_missed(hub: Hub, pid: str) -> None:
    feed = Feed(hub)
    log = ""
    feed.apply(prediction(pid, log))
    early = Viewer(hub, pid)
    early.read()
    for n in range(1000):
        log += line(n) if n % 7 else "é€😀 unicode, counted in code points\n"
        feed.apply(prediction(pid, log))
        if n in (400, 401, 700):  # away for this update: resume from the last event read
            early.close()
            settle(hub, pid)
            early = Viewer(hub, pid, resumes=early)
            early.read()
            assert early.events[0][1] == "logs", "a resume from a known id gets just what it missed"
        else:
            early.read()
    settle(hub, pid)
    late = Viewer(hub, pid)
    late.read()
    (_id, kind, data), = late.events
    assert kind == "message"
    tail = data["logs"]
    assert len(tail.encode()) <= TAIL and len(tail.encode()) > TAIL - 100
    assert data["logs_length"] == len(log) and log.endswith(tail)
    assert data["logs_offset"] == len(log) - len(tail) and log[data["logs_offset"] - 1] == "\n"
    # The viewer that left and resumed has the whole log, with nothing twice.
    assert early.base == 0 and early.log == log


def test_a_rewritten_log_sends_its_tail_in_a_snapshot(hub: Hub, pid: str) -> None:
    feed = Feed(hub)
    feed.apply(prediction(pid, "one\ntwo\n"))
    viewer = Viewer(hub, pid)
    viewer.read()
    feed.apply(prediction(pid, "ONE\nTWO\nthree\n"))  # not an extension: a rewrite
    viewer.read()
    shots = [d for _i, k, d in viewer.events if k == "message"]
    assert shots[-1]["logs"] == "ONE\nTWO\nthree\n" and shots[-1]["logs_offset"] == 0
    assert hub.log_text(pid) == "ONE\nTWO\nthree\n"


def test_later_snapshots_carry_no_log_and_growth_alone_sends_only_logs_events(hub: Hub, pid: str) -> None:
    feed = Feed(hub)
    feed.apply(prediction(pid, "boot\n"))
    viewer = Viewer(hub, pid)
    viewer.read()
    feed.apply(prediction(pid, "boot\nmore\n"))
    viewer.read()
    feed.apply(prediction(pid, "boot\nmore\n 50%|█████     | 1/2 [00:00<00:00, 9.0it/s]\n"))
    viewer.read()
    kinds = [k for _i, k, _d in viewer.events]
    assert kinds == ["message", "logs", "logs", "message"]
    last = viewer.events[-1][2]
    assert last["logs"] is None and last["logs_length"] == len(hub.log_text(pid) or "")
    assert last["progress"]["percent"] == 50.0


def test_finished_predictions_keep_their_log_once(pid: str) -> None:
    hub = MemoryHub()
    feed = Feed(hub)
    chunk = "x" * 99 + "\n"
    for k in range(20):
        log = ""
        for _ in range(50):
            log += chunk * 10  # 1 KB more each time, 50 KB in the end
            feed.apply(prediction(f"{pid}-{k}", log))
        feed.apply(prediction(f"{pid}-{k}", log, "succeeded"))
    hub.channels.reap(finished_grace=0)
    # Each keeps its final state, its 50 KB log once and `done` (not its 50 deltas).
    assert hub.channels.total_bytes <= 20 * (50_000 + 4_000)


def test_history_across_the_process_is_bounded_by_bytes(pid: str) -> None:
    hub = MemoryHub(memory_bytes=2 * 2**20)
    feed = Feed(hub)
    for k in range(40):
        log = ""
        for _ in range(20):
            log += "y" * 4999 + "\n"
            feed.apply(prediction(f"{pid}-{k}", log))
    assert hub.channels.total_bytes <= 2 * 2**20
    late = Viewer(hub, f"{pid}-39")
    late.read()
    assert late.events[-1][2]["logs_length"] == 100_000


def settle(hub: Hub, pid: str) -> None:
    """Wait until a Redis hub's mirror has every event Redis holds (a memory hub has them)."""
    if isinstance(hub, RedisHub):
        key = f"relay:{{{pid}}}:events"
        client = hub._redis
        newest = client.xrevrange(key, count=1)[0][0].decode()
        wait_until(lambda: (hub.mirror.last_key(pid) or (0, 0)) >= tuple(map(int, newest.split("-"))))
