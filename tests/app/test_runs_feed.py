"""The feed's hooks in process: records written per status change (not per log line), estimates on
every snapshot without breaking the hub's dedupe, and a finished record replayed to an empty hub."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask

from relay import create_app
from relay.service import RelayService


def _app(tmp_path: Path) -> tuple[Flask, RelayService]:
    app = create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "feed-test-secret-0123456789"})
    service = app.extensions["relay"]
    assert isinstance(service, RelayService) and service.runs is not None
    return app, service


def _prediction(status: str, logs: str = "", **more: Any) -> dict[str, Any]:
    return {"id": "p1", "model": "relay/image-demo", "version": "v" * 64, "status": status, "logs": logs,
            "output": None, "created_at": "2026-01-01T00:00:00.000000Z", **more}


def test_records_follow_status_changes_not_log_lines(tmp_path: Path) -> None:
    _, service = _app(tmp_path)
    assert service.runs is not None
    service.runs.created(_prediction("starting"), "relay/image-demo", {"prompt": "x"}, "visitor-1")
    updates: list[str] = []
    sa.event.listen(service.runs.store.engine, "before_cursor_execute",
                    lambda _c, _cur, statement, *_: updates.append(statement) if statement.startswith("UPDATE")
                    else None)
    service.feed.apply(_prediction("starting"))
    for step in range(1, 6):
        service.feed.apply(_prediction("processing", logs="".join(f"{i}/5 step\n" for i in range(step)),
                                       started_at="2026-01-01T00:00:02.000000Z"))
    service.feed.apply(_prediction("succeeded", logs="done\n", output=["plain text"],
                                   started_at="2026-01-01T00:00:02.000000Z",
                                   completed_at="2026-01-01T00:00:07.000000Z", metrics={"predict_time": 5.0}))
    assert len(updates) == 2  # processing, then succeeded: not one per log line
    row = service.runs.store.get("p1")
    assert row is not None and row["status"] == "succeeded" and row["output"] == ["plain text"]
    assert row["boot_seconds"] == 2.0 and row["run_seconds"] == 5.0
    assert row["snapshot"]["status"] == "succeeded" and row["visitor"] == "visitor-1"


def test_every_snapshot_has_an_estimate_and_a_repeat_is_still_one_event(tmp_path: Path) -> None:
    _, service = _app(tmp_path)
    events = []
    service.feed.apply(_prediction("starting"))
    first = service.hub.latest("p1")
    assert first is not None and first["estimate"] == {"start_in": None, "finish_in": None, "based_on": 0}
    replay = service.hub.replay("p1", None)
    events = [e for e in replay.events if e.kind == "snapshot"]
    service.feed.apply(_prediction("starting"))  # the same state from a poll
    again = service.hub.replay("p1", None)
    assert [e.id for e in again.events] == [e.id for e in events]


def test_a_finished_record_is_replayed_into_an_empty_hub(tmp_path: Path) -> None:
    _, service = _app(tmp_path)
    assert service.runs is not None
    service.runs.created(_prediction("starting"), "relay/image-demo", {}, "v")
    service.feed.apply(_prediction("failed", error="boom", completed_at="2026-01-01T00:00:03.000000Z"))
    _, restarted = _app(tmp_path)  # same instance folder: same database, empty hub
    assert not restarted.hub.knows("p1")
    restarted.ensure_known("p1")  # no upstream call: the emulator is not even reachable here
    replay = restarted.hub.replay("p1", None)
    assert [e.kind for e in replay.events] == ["snapshot", "done"]
    assert replay.events[0].data["error"] == "boom" and replay.events[1].data == {"id": "p1", "status": "failed"}
