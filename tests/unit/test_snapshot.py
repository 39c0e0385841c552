"""relay/snapshot.py: any JSON checked once and turned into Relay's snapshot; which of two states is older."""

from __future__ import annotations

from typing import Any

import pytest

from relay.snapshot import KNOWN_STATUSES, BadPrediction, is_older, snapshot_from_prediction

TQDM = " 50%|█████     | 5/10 [00:02<00:02,  2.00it/s]\n"


def prediction(**fields: Any) -> dict[str, Any]:
    return {"id": "p1", "status": "processing", **fields}


def test_a_snapshot_holds_what_a_subscriber_needs_and_nothing_else() -> None:
    snapshot = snapshot_from_prediction(prediction(
        logs="Using seed: 1\n" + TQDM, output=["a.png"], metrics={"predict_time": 1.5},
        created_at="2026-01-01T00:00:00Z", input={"prompt": "secret prompt"}, urls={"cancel": "x"}, version="v"))
    assert set(snapshot) == {"id", "status", "output", "error", "logs", "progress", "metrics",
                             "created_at", "started_at", "completed_at"}
    assert snapshot["progress"]["percent"] == 50 and snapshot["progress"]["current"] == 5
    assert snapshot["metrics"] == {"predict_time": 1.5}
    assert snapshot["created_at"] == "2026-01-01T00:00:00Z" and snapshot["started_at"] is None


def test_missing_logs_and_empty_metrics_become_empty_values() -> None:
    snapshot = snapshot_from_prediction(prediction(logs=None, metrics={}))
    assert snapshot["logs"] == "" and snapshot["progress"] is None and snapshot["metrics"] is None


@pytest.mark.parametrize("bad", [
    {"status": "processing"},
    {"id": "", "status": "processing"},
    {"id": 7, "status": "processing"},
    {"id": "p1", "status": "exploded"},
    {"id": "p1"},
    prediction(logs=["not", "text"]),
    prediction(error={"message": "not text"}),
    prediction(completed_at=1700000000),
])
def test_anything_that_is_not_a_prediction_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(BadPrediction):
        snapshot_from_prediction(bad)


def test_every_status_replicate_has_is_known() -> None:
    assert {"starting", "processing", "succeeded", "failed", "canceled", "aborted"} == KNOWN_STATUSES


def state(status: str = "processing", logs: str = "", output: Any = None) -> dict[str, Any]:
    return snapshot_from_prediction(prediction(status=status, logs=logs, output=output))


@pytest.mark.parametrize(("earlier", "later"), [
    (state("starting"), state("processing")),
    (state("processing", logs="a\n" * 9), state("succeeded")),  # status first, whatever the logs
    (state(logs="a\n"), state(logs="a\nb\n")),
    (state(logs="a\n", output=["x"]), state(logs="a\n", output=["x", "y"])),
    (state(logs="a\n", output="Hel"), state(logs="a\n", output="Hello")),
    (state(logs="a\n", output=None), state(logs="a\n", output={"file": "x"})),
])
def test_a_prediction_only_moves_forward(earlier: dict[str, Any], later: dict[str, Any]) -> None:
    assert is_older(earlier, later)
    assert not is_older(later, earlier)


def test_a_state_is_not_older_than_itself_nor_than_another_ending() -> None:
    assert not is_older(state(logs="a\n"), state(logs="a\n"))
    assert not is_older(state("failed"), state("succeeded"))
    assert not is_older(state("succeeded"), state("canceled"))
