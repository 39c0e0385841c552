"""Checks many tests make of Relay's answers: the error shape, and what reached the emulator."""

from __future__ import annotations

from typing import Any

import httpx


def assert_error(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """`answer` is Relay's JSON error: `status`, and exactly {"success": false, "error": <a sentence>, "code": code}
    (with `field`, the input it names, for invalid_input: docs/models.md)."""
    assert answer.status_code == status, answer.text
    payload: dict[str, Any] = answer.json()
    shape = {"success": False, "error": payload.get("error"), "code": code}
    if code == "invalid_input":
        shape["field"] = payload.get("field")
        assert isinstance(payload.get("field"), str) and payload["field"], payload
    assert payload == shape, payload
    assert isinstance(payload["error"], str) and len(payload["error"]) > 10, payload
    assert "Traceback" not in answer.text
    return payload


def upstream_creates(client: httpx.Client) -> int:
    """Create calls the embedded emulator has received (by model or by version), through Relay's /emulator."""
    stats: dict[str, int] = client.get("/emulator/_emulator/stats").json()
    return sum(n for route, n in stats.items() if route.startswith("POST ") and route.endswith("/predictions"))
