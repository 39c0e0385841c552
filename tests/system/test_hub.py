"""The hub's contract, run against the in-process hub and the Redis hub alike."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from relay.hub import HubEvent, MemoryHub, Waker, parse_event_id
from relay.redis_hub import RedisHub
from testbed import wait_until


@pytest.fixture(params=["memory", "redis"])
def hub(request: pytest.FixtureRequest) -> Iterator[MemoryHub]:
    if request.param == "memory":
        yield MemoryHub(history_size=8, history_bytes=50_000)
        return
    client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
    made = RedisHub(client, history_size=8)
    yield made
    made.close()
    client.close()


@pytest.fixture
def pid() -> str:
    return uuid.uuid4().hex


def snap(pid: str, status: str, n: int = 0) -> dict[str, Any]:
    return {"id": pid, "status": status, "n": n}


def publish(hub: MemoryHub, pid: str, kind: Any, data: dict[str, Any]) -> HubEvent | None:
    return hub.publish(pid, kind, data)


def settle(hub: MemoryHub, pid: str, event: HubEvent | None) -> None:
    """Wait until the local view holds `event` (immediate in memory, via pub/sub on Redis)."""
    if event is not None:
        store = hub.mirror if isinstance(hub, RedisHub) else hub.channels
        wait_until(lambda: (store.last_key(pid) or (0, 0)) >= event.key)


def test_ids_are_ordered_and_parse_back(hub: MemoryHub, pid: str) -> None:
    events = [publish(hub, pid, "snapshot", snap(pid, "processing", i)) for i in range(20)]
    keys = [parse_event_id(e.id) for e in events if e]
    assert keys == sorted(keys) and len(set(keys)) == 20


def test_unparseable_ids_are_unknown() -> None:
    for text in (None, "", "5", "a-b", "1-2-3", "١-٢", "9" * 50):
        assert parse_event_id(text) is None


def test_same_snapshot_twice_is_published_once(hub: MemoryHub, pid: str) -> None:
    assert publish(hub, pid, "snapshot", snap(pid, "starting")) is not None
    assert publish(hub, pid, "snapshot", snap(pid, "starting")) is None


def test_nothing_is_published_after_done(hub: MemoryHub, pid: str) -> None:
    publish(hub, pid, "snapshot", snap(pid, "succeeded"))
    publish(hub, pid, "done", {"id": pid, "status": "succeeded"})
    assert hub.is_done(pid)
    assert publish(hub, pid, "snapshot", snap(pid, "processing")) is None


def test_a_new_subscriber_gets_the_latest_snapshot_only(hub: MemoryHub, pid: str) -> None:
    for i in range(5):
        publish(hub, pid, "snapshot", snap(pid, "processing", i))
    assert [e.data["n"] for e in hub.replay(pid, None).events] == [4]


def test_resume_sends_exactly_the_missed_events(hub: MemoryHub, pid: str) -> None:
    events = [publish(hub, pid, "snapshot", snap(pid, "processing", i)) for i in range(6)]
    replay = hub.replay(pid, events[2].id)  # type: ignore[union-attr]
    assert [e.data["n"] for e in replay.events] == [3, 4, 5]
    assert [e.id for e in replay.events] == [e.id for e in events[3:]]  # type: ignore[union-attr]


def test_unknown_or_foreign_id_gets_the_current_snapshot(hub: MemoryHub, pid: str) -> None:
    for i in range(3):
        publish(hub, pid, "snapshot", snap(pid, "processing", i))
    for last in ("1-0", "garbage", "99999999999999-0"):
        assert [e.data["n"] for e in hub.replay(pid, last).events] == [2]


def test_resume_at_or_after_done_is_finished(hub: MemoryHub, pid: str) -> None:
    publish(hub, pid, "snapshot", snap(pid, "succeeded"))
    done = publish(hub, pid, "done", {"id": pid, "status": "succeeded"})
    assert done is not None
    assert hub.replay(pid, done.id).finished
    assert not hub.replay(pid, None).finished


def test_reader_behind_the_history_is_coalesced_to_the_latest_snapshot(hub: MemoryHub, pid: str) -> None:
    first = publish(hub, pid, "snapshot", snap(pid, "processing", 0))
    assert first is not None
    hub.replay(pid, None)  # start following (on Redis: mirror it here)
    last = None
    for i in range(1, 100):
        last = publish(hub, pid, "snapshot", snap(pid, "processing", i))
    settle(hub, pid, last)
    events, _cursor = hub.events_after(pid, first.key)
    assert [e.data["n"] for e in events] == [99]
    assert hub.coalesced >= 1


def test_publish_wakes_attached_wakers_only(hub: MemoryHub, pid: str) -> None:
    watching, other = Waker(), Waker()
    hub.attach([pid], watching)
    hub.attach([pid + "x"], other)
    publish(hub, pid, "snapshot", snap(pid, "starting"))
    assert watching.wait(5)
    assert not other.wait(0.05)
    hub.detach([pid], watching)
    assert hub.subscriber_count(pid) == 0


def test_open_streams_counts_each_stream_once_however_many_predictions_it_follows(
        hub: MemoryHub, pid: str) -> None:
    single, multiplexed = Waker(), Waker()
    hub.attach([pid], single)
    hub.attach([pid, pid + "b", pid + "c"], multiplexed)
    assert hub.open_streams() == 2
    hub.detach([pid, pid + "b", pid + "c"], multiplexed)
    assert hub.open_streams() == 1
    hub.detach([pid], single)
    assert hub.open_streams() == 0


def test_upstream_ok_is_only_sent_after_a_degraded_state(hub: MemoryHub, pid: str) -> None:
    ok = {"id": pid, "state": "ok"}
    assert publish(hub, pid, "upstream", ok) is None
    assert publish(hub, pid, "upstream", {"id": pid, "state": "degraded", "error": "x", "retry_in": 1}) is not None
    assert publish(hub, pid, "upstream", ok) is not None


def test_events_are_encoded_once_with_shared_bytes(hub: MemoryHub, pid: str) -> None:
    event = publish(hub, pid, "output", {"id": pid, "text": "hi\nthere"})
    assert event is not None
    assert event.wire == f"id: {event.id}\n".encode() + event.body
    assert event.body == f'event: output\ndata: {{"id":"{pid}","text":"hi\\nthere"}}\n\n'.encode()


def test_close_wakes_everyone(hub: MemoryHub, pid: str) -> None:
    waker = Waker()
    hub.attach([pid], waker)
    hub.close()
    assert hub.closing and waker.wait(0)


def test_latest_and_knows(hub: MemoryHub, pid: str) -> None:
    assert not hub.knows(pid) and hub.latest(pid) is None
    publish(hub, pid, "snapshot", snap(pid, "starting"))
    assert hub.knows(pid) and hub.latest(pid) == {**snap(pid, "starting"), "logs_length": 0}


def test_memory_history_is_bounded_by_bytes_too(pid: str) -> None:
    hub = MemoryHub(history_size=10_000, history_bytes=50_000)
    for i in range(200):
        hub.publish(pid, "snapshot", {"id": pid, "status": "processing", "logs": "x" * 1000, "n": i})
    assert hub.replay(pid, None).events[-1].data["n"] == 199
    assert sum(e.size for e in hub.channels.history(pid)) <= 50_000


def test_redis_events_reach_a_hub_in_another_process_stand_in(redis_url: str, pid: str) -> None:
    """Two RedisHubs on one Redis (as two workers): an event published by one wakes the other's reader."""
    one = RedisHub(redis.Redis.from_url(redis_url))
    two = RedisHub(redis.Redis.from_url(redis_url))
    waker = Waker()
    two.attach([pid], waker)
    first = one.publish(pid, "snapshot", snap(pid, "processing", 1))
    assert first is not None and waker.wait(5)
    events, _ = two.events_after(pid, None)
    assert [e.id for e in events] == [first.id]
    # Resume on the other hub with an id issued through the first: exactly the rest.
    second = one.publish(pid, "snapshot", snap(pid, "processing", 2))
    assert second is not None
    settle(two, pid, second)
    assert [e.id for e in two.replay(pid, first.id).events] == [second.id]
    one.close()
    two.close()


def test_an_unreachable_redis_is_not_taken_for_done_and_kills_no_loop(pid: str) -> None:
    """Watchers ask is_done at the top of their loop: an outage must not raise there (it killed them)."""
    from testbed import free_port

    hub = RedisHub(redis.Redis(port=free_port(), socket_connect_timeout=0.2))
    assert hub.is_done(pid) is False
    assert hub.ping() is False
