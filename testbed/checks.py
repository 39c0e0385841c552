"""Checks the tests share about Relay's answers."""

from __future__ import annotations

from typing import Any

import httpx


def assert_error(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The answer is the contract's JSON error with this status and code; its body is returned."""
    assert answer.status_code == status, answer.text
    payload: dict[str, Any] = answer.json()
    assert payload["success"] is False and payload["code"] == code and len(payload["error"]) > 10
    return payload
