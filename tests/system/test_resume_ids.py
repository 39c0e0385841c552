"""Resume positions must be ids Relay issued: anything else is refused before it reaches a stream."""

from __future__ import annotations

import httpx


def assert_error(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["success"] is False and body["code"] == code


def test_odd_last_event_ids_are_refused(api: httpx.Client) -> None:
    created = api.post("/api/predictions", json={"model": "relay/image-demo",
                                                 "input": {"prompt": "x", "steps": 2, "step_delay": 0}}).json()
    for last in ("\u2028", "1-2,3-4", "-1--1", "x" * 5000):
        answer = api.get(created["stream_url"], headers={"Last-Event-ID": last.encode()})
        assert_error(answer, 400, "invalid_request")
