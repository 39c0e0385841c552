"""A Replicate prediction (any JSON) turned into Relay's snapshot, checked once here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .progress import parse_progress

__all__ = ["KNOWN_STATUSES", "BadPrediction", "is_older", "snapshot_from_prediction"]

KNOWN_STATUSES = frozenset({"starting", "processing", "succeeded", "failed", "canceled", "aborted"})
_TIME_FIELDS = ("created_at", "started_at", "completed_at")
_STATUS_RANK = {"starting": 0, "processing": 1, "succeeded": 2, "failed": 2, "canceled": 2, "aborted": 2}


class BadPrediction(ValueError):
    """The upstream answered with something that is not a prediction."""


def _optional_str(prediction: Mapping[str, Any], name: str) -> str | None:
    value = prediction.get(name)
    if value is None or isinstance(value, str):
        return value
    raise BadPrediction(f"prediction field {name!r} is not a string")


def snapshot_from_prediction(prediction: Mapping[str, Any]) -> dict[str, Any]:
    """The whole state a subscriber needs, with progress parsed from the logs."""
    prediction_id = prediction.get("id")
    status = prediction.get("status")
    if not isinstance(prediction_id, str) or not prediction_id:
        raise BadPrediction("prediction has no id")
    if status not in KNOWN_STATUSES:
        raise BadPrediction(f"prediction has an unknown status {status!r}")
    logs = _optional_str(prediction, "logs")
    metrics = prediction.get("metrics")
    progress = parse_progress(logs)
    snapshot: dict[str, Any] = {
        "id": prediction_id,
        "status": status,
        "output": prediction.get("output"),
        "error": _optional_str(prediction, "error"),
        "logs": logs or "",
        "progress": progress.as_dict() if progress else None,
        "metrics": metrics if isinstance(metrics, dict) and metrics else None,
    }
    for name in _TIME_FIELDS:
        snapshot[name] = _optional_str(prediction, name)
    return snapshot


def _rank(snapshot: Mapping[str, Any]) -> tuple[int, int, int]:
    output = snapshot.get("output")
    if isinstance(output, (list, str)):
        size = len(output)
    else:
        size = 0 if output is None else 1
    return _STATUS_RANK.get(snapshot.get("status", ""), 0), len(snapshot.get("logs") or ""), size


def is_older(candidate: Mapping[str, Any], held: Mapping[str, Any]) -> bool:
    """True when `candidate` is an earlier state than `held`.

    Replicate predictions carry no revision number, but a prediction only moves
    forward: its status advances, and its logs and output only grow. A delivery
    that is behind on any of those, in that order, came out of order.
    """
    return _rank(candidate) < _rank(held)
