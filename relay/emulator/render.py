"""The prediction object as Replicate's API returns it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .base import DemoModel, State
from .store import Record


def iso(ts: float | None) -> str | None:
    """Replicate's timestamp text: UTC, microseconds, trailing Z."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def removed_state(record: Record) -> State:
    """The frozen state kept for a prediction whose data was removed."""
    r = record.removed or {}
    return State(str(r.get("status")), r.get("started_at"), r.get("completed_at"), None, None, r.get("error"))


def as_starting(state: State) -> State:
    """What Replicate answers when a `Prefer: wait` window ends first: still `starting`."""
    return State("starting", None, None, None, None, None)


def prediction_json(model: DemoModel, record: Record, state: State, api_root: str,
                    stream_url: str | None = None) -> dict[str, Any]:
    get_url = f"{api_root}v1/predictions/{record.id}"
    urls = {
        "cancel": f"{get_url}/cancel",
        "get": get_url,
        "web": f"https://replicate.com/p/{record.id}",
    }
    if stream_url is not None:
        urls["stream"] = stream_url
    metrics: dict[str, float] = {}
    if state.completed_at is not None:
        if state.started_at is not None:
            metrics["predict_time"] = round(state.completed_at - state.started_at, 6)
        metrics["total_time"] = round(state.completed_at - record.created_at, 6)
    removed = record.removed is not None
    return {
        "id": record.id,
        "model": record.model,
        "version": record.version,
        "input": {} if removed else record.input,
        "logs": state.logs or "",
        "output": state.output,
        "data_removed": removed,
        "error": state.error,
        "status": state.status,
        "source": "api",
        "created_at": iso(record.created_at),
        "started_at": iso(state.started_at),
        "completed_at": iso(state.completed_at),
        "urls": urls,
        "metrics": metrics,
        "webhook": record.webhook,
        "webhook_completed": None,  # the legacy field, still in Replicate's answers
        "webhook_events_filter": record.webhook_events_filter,
    }
