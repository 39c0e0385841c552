"""Cancels cost Replicate nothing once a prediction is finished, and are rate-limited per client."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from testbed import RelayServer
from testbed.sse import follow


def upstream_cancels(client: httpx.Client) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "relay_upstream_requests_total" and sample.labels.get("endpoint") == "cancel":
                return sum(s.value for s in family.samples
                           if s.name == sample.name and s.labels.get("endpoint") == "cancel")
    return 0.0


def test_cancels_of_a_finished_prediction_stay_local_and_are_limited(
        start_server: Callable[..., RelayServer]) -> None:
    server = start_server({"RELAY_CANCEL_RATE_LIMIT": "5/minute"})
    with httpx.Client(base_url=server.url, timeout=10) as client:
        created = client.post("/api/predictions", json={"model": "relay/image-demo", "input": {
            "prompt": "done", "steps": 2, "step_delay": 0, "boot_delay": 0}}).json()
        events = follow(client, created["stream_url"])
        assert events[-1].kind == "done"
        before = upstream_cancels(client)
        answers = [client.post(created["cancel_url"]) for _ in range(20)]
        after = upstream_cancels(client)
    assert [a.status_code for a in answers[:5]] == [200] * 5
    assert all(a.json()["status"] == "succeeded" for a in answers[:5])
    assert {a.status_code for a in answers[5:]} == {429}
    refused = answers[5].json()
    assert refused["code"] == "rate_limited" and "cancels" in refused["error"]
    assert answers[5].headers["Retry-After"].isdigit()
    assert after == before == 0.0


def test_a_running_prediction_is_still_cancelled_upstream(
        start_server: Callable[..., RelayServer]) -> None:
    server = start_server({"RELAY_CANCEL_RATE_LIMIT": "5/minute"})
    with httpx.Client(base_url=server.url, timeout=10) as client:
        created = client.post("/api/predictions", json={"model": "relay/image-demo", "input": {
            "prompt": "long", "steps": 50, "step_delay": 0.2}}).json()
        answer = client.post(created["cancel_url"])
        assert answer.status_code == 200
        assert upstream_cancels(client) == 1.0
        assert follow(client, created["stream_url"])[-1].data["status"] == "canceled"
