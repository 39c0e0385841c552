"""Feed.apply's ordering rules (relay/feed.py): older states ignored, nothing after a terminal one,
the same state twice one event; `done` once, after the terminal state."""

from __future__ import annotations

from typing import Any

from relay.feed import Applied, Feed
from relay.hub import MemoryHub


def prediction(status: str, logs: str = "", output: Any = None, pid: str = "p1") -> dict[str, Any]:
    return {"id": pid, "status": status, "logs": logs, "output": output, "error": None,
            "created_at": "2026-01-01T00:00:00Z", "started_at": None, "completed_at": None}


def kinds_and_statuses(hub: MemoryHub, pid: str = "p1") -> list[tuple[str, str]]:
    """The states published (the log's growth travels apart, as `logs` events)."""
    return [(e.kind, str(e.data["status"])) for e in hub.channels.history(pid) if e.kind != "logs"]


def test_an_older_state_is_ignored_and_the_newer_one_kept() -> None:
    hub = MemoryHub()
    feed = Feed(hub)
    assert feed.apply(prediction("processing", logs="step 1\nstep 2\n")) is Applied.NEW
    assert feed.apply(prediction("processing", logs="step 1\n")) is Applied.STALE  # fewer logs: older
    assert feed.apply(prediction("starting")) is Applied.STALE  # an earlier status: older
    held = hub.latest("p1")
    assert held is not None and held["logs_length"] == len("step 1\nstep 2\n")
    assert hub.log_text("p1") == "step 1\nstep 2\n"
    assert kinds_and_statuses(hub) == [("snapshot", "processing")]


def test_a_state_that_grew_is_published() -> None:
    hub = MemoryHub()
    feed = Feed(hub)
    assert feed.apply(prediction("starting")) is Applied.NEW
    assert feed.apply(prediction("processing", logs="a\n")) is Applied.NEW
    assert feed.apply(prediction("processing", logs="a\n", output=["x"])) is Applied.NEW
    assert kinds_and_statuses(hub) == [("snapshot", "starting"), ("snapshot", "processing"),
                                       ("snapshot", "processing")]


def test_nothing_is_applied_after_a_terminal_state() -> None:
    finished: list[tuple[str, str]] = []
    hub = MemoryHub()
    feed = Feed(hub, on_finished=lambda pid, status: finished.append((pid, status)))
    assert feed.apply(prediction("processing", logs="a\n")) is Applied.NEW
    assert feed.apply(prediction("succeeded", logs="a\nb\n", output="done")) is Applied.NEW
    # Not older by any measure (a terminal status, more logs), yet after the end: refused.
    assert feed.apply(prediction("failed", logs="a\nb\nc\n")) is Applied.SAME
    assert feed.apply(prediction("succeeded", logs="a\nb\nc\nd\n", output="other")) is Applied.SAME
    assert kinds_and_statuses(hub) == [("snapshot", "processing"), ("snapshot", "succeeded"),
                                       ("done", "succeeded")]
    assert finished == [("p1", "succeeded")]
    assert hub.latest("p1") is not None and hub.latest("p1")["output"] == "done"  # type: ignore[index]


def test_the_same_state_twice_is_one_event() -> None:
    hub = MemoryHub()
    feed = Feed(hub)
    state = prediction("processing", logs="a\n")
    assert feed.apply(state) is Applied.NEW
    assert feed.apply(dict(state)) is Applied.SAME  # the same state by another path (a webhook, a poll)
    assert kinds_and_statuses(hub) == [("snapshot", "processing")]


def test_the_same_terminal_state_twice_makes_one_done() -> None:
    finished: list[tuple[str, str]] = []
    hub = MemoryHub()
    feed = Feed(hub, on_finished=lambda pid, status: finished.append((pid, status)))
    final = prediction("canceled", logs="a\n")
    assert feed.apply(final) is Applied.NEW
    assert feed.apply(final) is Applied.SAME
    assert kinds_and_statuses(hub) == [("snapshot", "canceled"), ("done", "canceled")]
    assert finished == [("p1", "canceled")]


def test_something_that_is_not_a_prediction_is_refused_and_changes_nothing() -> None:
    hub = MemoryHub()
    feed = Feed(hub)
    assert feed.apply({"status": "processing"}) is Applied.INVALID
    assert feed.apply({"id": "p1", "status": "exploded"}) is Applied.INVALID
    assert not hub.knows("p1")


def test_a_stream_url_is_handed_on_only_while_running_and_only_over_http() -> None:
    seen: list[tuple[str, str]] = []
    feed = Feed(MemoryHub(), on_stream_url=lambda pid, url: seen.append((pid, url)))
    feed.apply({**prediction("processing"), "urls": {"stream": "https://stream.example/p1"}})
    feed.apply({**prediction("processing", logs="a\n"), "urls": {"stream": "file:///etc/passwd"}})
    feed.apply({**prediction("succeeded", logs="a\nb\n"), "urls": {"stream": "https://stream.example/p1"}})
    assert seen == [("p1", "https://stream.example/p1")]
