"""The log on the wire end to end (gunicorn, the emulator): tail + deltas, and the logs endpoint."""

from __future__ import annotations

import httpx
from itsdangerous import URLSafeTimedSerializer

from testbed import TEST_SECRET
from testbed.sse import follow


def reassemble(events: list) -> str:  # type: ignore[type-arg]
    """The log as a client rebuilds it: the first snapshot's tail, then each delta at its offset."""
    log = ""
    for event in events:
        if event.kind == "message" and event.data["logs"] is not None:
            log = event.data["logs"]
            assert event.data["logs_offset"] == 0  # this viewer joined at the start
        elif event.kind == "logs":
            assert event.data["offset"] == len(log)
            log += event.data["text"]
        if event.kind == "message":
            assert event.data["logs_length"] == len(log)
    return log


def test_the_stream_and_the_logs_endpoint_carry_the_same_log(api: httpx.Client) -> None:
    created = api.post("/api/predictions", json={"model": "relay/image-demo",
                                                 "input": {"prompt": "logged", "steps": 8, "step_delay": 0.05,
                                                           "boot_delay": 0.1}}).json()
    events = follow(api, created["stream_url"])
    assert events[-1].kind == "done"
    shots = [e for e in events if e.kind == "message"]
    assert all(s.data["logs"] is None for s in shots[1:]), "only the first snapshot carries log text"
    assert any(e.kind == "logs" for e in events)
    token = created["stream_url"].split("token=")[1]
    full = api.get(f"/api/predictions/{created['id']}/logs?token={token}")
    assert full.status_code == 200 and full.headers["content-type"].startswith("text/plain")
    assert full.text == reassemble(events) and "8/8" in full.text
    # A late joiner gets the current state with the log's tail (here all of it).
    late = follow(api, created["stream_url"])
    assert late[0].data["logs"] == full.text and late[-1].kind == "done"


def test_the_logs_endpoint_follows_the_streams_403_and_404(api: httpx.Client) -> None:
    created = api.post("/api/predictions", json={"model": "relay/image-demo",
                                                 "input": {"prompt": "x", "steps": 1, "boot_delay": 0}}).json()
    refused = api.get(f"/api/predictions/{created['id']}/logs?token=forged")
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    missing = "doesnotexist0000"
    token = URLSafeTimedSerializer(TEST_SECRET, salt="relay-stream").dumps(missing)
    unknown = api.get(f"/api/predictions/{missing}/logs?token={token}")
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"
