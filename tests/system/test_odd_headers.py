"""Request bytes only a real HTTP server passes on: a Last-Event-ID that is not ASCII, among other odd ones.

(httpx's WSGITransport cannot send non-ASCII header bytes, so this is not in tests/app/.)
"""

from __future__ import annotations

import httpx


def test_odd_last_event_ids_are_harmless(api: httpx.Client) -> None:
    created = api.post("/api/predictions", json={"model": "relay/image-demo",
                                                 "input": {"prompt": "x", "steps": 2, "step_delay": 0}}).json()
    for last in ("\u2028", "1-2,3-4", "-1--1", "x" * 5000):
        with api.stream("GET", created["stream_url"], headers={"Last-Event-ID": last.encode()}) as answer:
            assert answer.status_code == 200
