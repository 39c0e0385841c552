"""The prediction object as Replicate's API returns it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .models import DemoModel, State
from .store import Record


def iso(ts: float | None) -> str | None:
    """Replicate's timestamp text: UTC, microseconds, trailing Z."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def prediction_json(model: DemoModel, record: Record, state: State, url_root: str) -> dict[str, Any]:
    get_url = f"{url_root}v1/predictions/{record.id}"
    urls = {
        "get": get_url,
        "cancel": f"{get_url}/cancel",
        "web": f"https://replicate.com/p/{record.id}",
    }
    if model.streams:
        urls["stream"] = f"{url_root}stream/{record.id}"
    metrics: dict[str, float] = {}
    if state.completed_at is not None:
        if state.started_at is not None:
            metrics["predict_time"] = round(state.completed_at - state.started_at, 6)
        metrics["total_time"] = round(state.completed_at - record.created_at, 6)
    return {
        "id": record.id,
        "model": record.model,
        "version": record.version,
        "input": record.input,
        "logs": state.logs,
        "output": state.output,
        "data_removed": False,
        "error": state.error,
        "status": state.status,
        "source": "api",
        "created_at": iso(record.created_at),
        "started_at": iso(state.started_at),
        "completed_at": iso(state.completed_at),
        "urls": urls,
        "metrics": metrics,
        "webhook": record.webhook,
        "webhook_events_filter": record.webhook_events_filter,
    }
