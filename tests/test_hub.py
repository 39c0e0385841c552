"""The in-process hub: ids, dedupe, resume, coalescing, done."""

from relay.hub import MemoryHub, Waker, parse_event_id


def snap(status: str, n: int = 0) -> dict[str, object]:
    return {"id": "p", "status": status, "n": n}


def test_ids_are_ordered_and_parse_back() -> None:
    hub = MemoryHub()
    ids = [hub.publish("p", "snapshot", snap("processing", i)) for i in range(50)]
    keys = [parse_event_id(e.id) for e in ids if e]
    assert keys == sorted(keys) and len(set(keys)) == 50


def test_unparseable_ids_are_unknown() -> None:
    for text in (None, "", "5", "a-b", "1-2-3", "١-٢", "9" * 50):
        assert parse_event_id(text) is None


def test_same_snapshot_twice_is_published_once() -> None:
    hub = MemoryHub()
    assert hub.publish("p", "snapshot", snap("starting")) is not None
    assert hub.publish("p", "snapshot", snap("starting")) is None


def test_nothing_is_published_after_done() -> None:
    hub = MemoryHub()
    hub.publish("p", "snapshot", snap("succeeded"))
    hub.publish("p", "done", {"id": "p", "status": "succeeded"})
    assert hub.publish("p", "snapshot", snap("processing")) is None


def test_a_new_subscriber_gets_the_latest_snapshot_only() -> None:
    hub = MemoryHub()
    for i in range(5):
        hub.publish("p", "snapshot", snap("processing", i))
    replay = hub.replay("p", None)
    assert [e.data["n"] for e in replay.events] == [4]


def test_resume_sends_exactly_the_missed_events() -> None:
    hub = MemoryHub()
    events = [hub.publish("p", "snapshot", snap("processing", i)) for i in range(6)]
    replay = hub.replay("p", events[2].id)  # type: ignore[union-attr]
    assert [e.data["n"] for e in replay.events] == [3, 4, 5]


def test_unknown_or_foreign_id_gets_the_current_snapshot() -> None:
    hub = MemoryHub()
    for i in range(3):
        hub.publish("p", "snapshot", snap("processing", i))
    for last in ("1-0", "garbage", "99999999999999-0"):
        assert [e.data["n"] for e in hub.replay("p", last).events] == [2]


def test_resume_at_or_after_done_is_finished() -> None:
    hub = MemoryHub()
    hub.publish("p", "snapshot", snap("succeeded"))
    done = hub.publish("p", "done", {"id": "p", "status": "succeeded"})
    assert done is not None
    assert hub.replay("p", done.id).finished
    assert not hub.replay("p", None).finished


def test_reader_behind_the_history_is_coalesced_to_the_latest_snapshot() -> None:
    hub = MemoryHub(history_size=8)
    first = hub.publish("p", "snapshot", snap("processing", 0))
    assert first is not None
    for i in range(1, 100):
        hub.publish("p", "snapshot", snap("processing", i))
    events, _cursor = hub.events_after("p", first.key)
    assert [e.data["n"] for e in events] == [99]
    assert hub.coalesced == 1


def test_history_is_bounded_by_bytes_too() -> None:
    hub = MemoryHub(history_size=10_000, history_bytes=50_000)
    for i in range(200):
        hub.publish("p", "snapshot", {"id": "p", "status": "processing", "logs": "x" * 1000, "n": i})
    replay = hub.replay("p", None)
    assert replay.events[-1].data["n"] == 199
    total = sum(len(e.wire) for e in hub._channels["p"].history)
    assert total <= 50_000


def test_publish_wakes_attached_wakers_only() -> None:
    hub = MemoryHub()
    watching, other = Waker(), Waker()
    hub.attach(["p"], watching)
    hub.attach(["q"], other)
    hub.publish("p", "snapshot", snap("starting"))
    assert watching.wait(0)
    assert not other.wait(0)
    hub.detach(["p"], watching)
    assert hub.subscriber_count("p") == 0


def test_upstream_ok_is_only_sent_after_a_degraded_state() -> None:
    hub = MemoryHub()
    assert hub.publish("p", "upstream", {"id": "p", "state": "ok"}) is None
    assert hub.publish("p", "upstream", {"id": "p", "state": "degraded", "error": "x", "retry_in": 1}) is not None
    assert hub.publish("p", "upstream", {"id": "p", "state": "ok"}) is not None


def test_events_are_encoded_once_with_shared_bytes() -> None:
    hub = MemoryHub()
    event = hub.publish("p", "output", {"id": "p", "text": "hi\nthere"})
    assert event is not None
    assert event.wire == f"id: {event.id}\n".encode() + event.body
    assert event.body == b'event: output\ndata: {"id":"p","text":"hi\\nthere"}\n\n'


def test_close_wakes_everyone() -> None:
    hub = MemoryHub()
    waker = Waker()
    hub.attach(["p"], waker)
    hub.close()
    assert hub.closing and waker.wait(0)
