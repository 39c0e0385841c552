"""A Replicate prediction (any JSON) turned into Relay's snapshot, checked once here."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .progress import Progress, parse_progress

ProgressOf = Callable[[str, "str | None"], "Progress | None"]

_SURROGATE = re.compile("[\ud800-\udfff]")

__all__ = ["KNOWN_STATUSES", "TERMINAL_STATUSES", "BadPrediction", "is_older", "is_prediction",
           "scrub_surrogates", "snapshot_from_prediction"]

# Replicate's statuses; a prediction in a terminal one never changes again.
TERMINAL_STATUSES = frozenset({"succeeded", "failed", "canceled", "aborted"})
KNOWN_STATUSES = frozenset({"starting", "processing"}) | TERMINAL_STATUSES
_TIME_FIELDS = ("created_at", "started_at", "completed_at")
_STATUS_RANK = {"starting": 0, "processing": 1, **dict.fromkeys(TERMINAL_STATUSES, 2)}


class BadPrediction(ValueError):
    """The upstream answered with something that is not a prediction."""


def _optional_str(prediction: Mapping[str, Any], name: str) -> str | None:
    value = prediction.get(name)
    if value is None or isinstance(value, str):
        return value
    raise BadPrediction(f"prediction field {name!r} is not a string")


def scrub_surrogates(value: Any) -> Any:
    """`value` with every lone UTF-16 surrogate (JSON's `\\ud800`) replaced by U+FFFD.

    Python's JSON reader accepts lone surrogates, but they cannot be encoded as
    UTF-8, so a single one in an upstream answer would make it unsendable.
    """
    if isinstance(value, str):
        if _SURROGATE.search(value) is None:
            return value
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [scrub_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {scrub_surrogates(k): scrub_surrogates(v) for k, v in value.items()}
    return value


def is_prediction(prediction: object) -> bool:
    """True when an upstream answer has the shape of a prediction (an id and a known status)."""
    return isinstance(prediction, Mapping) and isinstance(prediction.get("id"), str) \
        and bool(prediction.get("id")) and prediction.get("status") in KNOWN_STATUSES


def snapshot_from_prediction(prediction: Mapping[str, Any], progress_of: ProgressOf | None = None) -> dict[str, Any]:
    """The whole state a subscriber needs, with progress parsed from the logs (by `progress_of`,
    given the id and the logs, when the caller keeps a reader per prediction)."""
    prediction = scrub_surrogates(prediction)
    prediction_id = prediction.get("id")
    status = prediction.get("status")
    if not isinstance(prediction_id, str) or not prediction_id:
        raise BadPrediction("prediction has no id")
    if status not in KNOWN_STATUSES:
        raise BadPrediction(f"prediction has an unknown status {status!r}")
    logs = _optional_str(prediction, "logs")
    metrics = prediction.get("metrics")
    progress = progress_of(prediction_id, logs) if progress_of is not None else parse_progress(logs)
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
    length = snapshot.get("logs_length")
    if not isinstance(length, int):  # a snapshot holding its whole log
        length = len(snapshot.get("logs") or "")
    return _STATUS_RANK.get(snapshot.get("status", ""), 0), length, size


def is_older(candidate: Mapping[str, Any], held: Mapping[str, Any]) -> bool:
    """True when `candidate` is an earlier state than `held`.

    Replicate predictions carry no revision number, but a prediction only moves
    forward: its status advances, and its logs and output only grow. A delivery
    that is behind on any of those, in that order, came out of order.
    """
    return _rank(candidate) < _rank(held)
