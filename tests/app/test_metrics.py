"""/metrics parses with prometheus-client's own parser, and its counters move when predictions run."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from testbed.sse import follow


def samples(client: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counters_move_when_a_prediction_runs(client: httpx.Client) -> None:
    before = samples(client)
    created = client.post("/api/predictions", json={"model": "relay/image-demo", "input": {
        "prompt": "counted", "steps": 4, "step_delay": 0.05, "boot_delay": 0}}).json()
    events = follow(client, created["stream_url"])
    client.get(created["stream_url"], headers={"Last-Event-ID": events[-1].id})  # a 204
    client.post("/api/predictions", json={"model": "evil/model", "input": {}})
    after = samples(client)
    assert value(after, "relay_create_requests_total", outcome="created") == \
        value(before, "relay_create_requests_total", outcome="created") + 1
    assert value(after, "relay_create_requests_total", outcome="model_not_allowed") >= 1
    assert value(after, "relay_events_sent_total", type="done") > value(before, "relay_events_sent_total", type="done")
    assert value(after, "relay_predictions_finished_total", status="succeeded") > \
        value(before, "relay_predictions_finished_total", status="succeeded")
    assert value(after, "relay_upstream_requests_total", endpoint="get", outcome="ok") > \
        value(before, "relay_upstream_requests_total", endpoint="get", outcome="ok")
    assert value(after, "relay_stream_no_content_total") == value(before, "relay_stream_no_content_total") + 1
    assert ("relay_open_streams", ()) in after
