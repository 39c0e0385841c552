"""Create, follow, cancel and resume predictions through a real gunicorn + gevent server.

The app reaches its embedded emulator through the real `replicate` client over
HTTP; the streams are read with httpx-sse, an independent SSE client.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from testbed import RelayServer, wait_until
from testbed.sse import Event, follow, iter_events, snapshots

FAST_IMAGE = {"prompt": "a red fox", "steps": 8, "step_delay": 0.05, "boot_delay": 0.1}


def create(api: httpx.Client, model: str = "relay/image-demo", **input: Any) -> dict[str, Any]:
    answer = api.post("/api/predictions", json={"model": model, "input": input or FAST_IMAGE})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def assert_no_repeats(events: list[Event]) -> None:
    ids = [e.id for e in events]
    assert len(ids) == len(set(ids)), ids
    shots = snapshots(events)
    assert all(a != b for a, b in zip(shots, shots[1:], strict=False)), "same snapshot twice in a row"


def test_image_prediction_streams_progress_to_success(api: httpx.Client) -> None:
    created = create(api)
    assert created["status"] == "starting" and created["success"] is True
    events = follow(api, created["stream_url"])
    assert_no_repeats(events)
    statuses = [s["status"] for s in snapshots(events)]
    assert statuses[-1] == "succeeded"
    assert "processing" in statuses
    percents = [s["progress"]["percent"] for s in snapshots(events) if s["progress"]]
    assert percents == sorted(percents) and percents[-1] == 100.0 and len(set(percents)) > 2
    assert events[-1].kind == "done" and events[-1].data == {"id": created["id"], "status": "succeeded"}
    image = api.get(snapshots(events)[-1]["output"][0], timeout=10)  # a kept /files/ path on Relay's origin
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG\r\n\x1a\n")


def test_text_prediction_ends_with_all_tokens(api: httpx.Client) -> None:
    created = create(api, "relay/text-demo", prompt="tell me a story", max_tokens=12,
                     token_delay=0.02, boot_delay=0)
    events = follow(api, created["stream_url"])
    final = snapshots(events)[-1]
    assert final["status"] == "succeeded"
    assert isinstance(final["output"], list) and len(final["output"]) == 12


def test_failure_at_a_step_ends_failed_with_the_error(api: httpx.Client) -> None:
    created = create(api, **{**FAST_IMAGE, "fail_at_step": 3})
    events = follow(api, created["stream_url"])
    final = snapshots(events)[-1]
    assert final["status"] == "failed" and "step 3" in final["error"]
    assert events[-1].data["status"] == "failed"


def test_cancel_ends_the_stream_canceled(api: httpx.Client) -> None:
    created = create(api, **{**FAST_IMAGE, "steps": 200, "step_delay": 0.05})
    stream = iter_events(api, created["stream_url"])
    first = next(stream)
    assert first.kind == "message"
    answer = api.post(created["cancel_url"])
    assert answer.status_code == 200 and answer.json()["success"] is True
    rest = list(stream)
    assert snapshots(rest)[-1]["status"] == "canceled"
    assert rest[-1].kind == "done" and rest[-1].data["status"] == "canceled"


def test_resume_with_last_event_id_sends_no_duplicate_and_loses_nothing(api: httpx.Client) -> None:
    created = create(api, **{**FAST_IMAGE, "steps": 12, "step_delay": 0.1})
    watcher = iter_events(api, created["stream_url"])
    everything = [next(watcher)]  # a second subscriber that never disconnects
    first_part = follow(api, created["stream_url"], limit=3)
    rest = follow(api, created["stream_url"], last_event_id=first_part[-1].id)
    everything += list(watcher)
    resumed = first_part + rest
    assert_no_repeats(resumed)
    assert [e.id for e in resumed][-len(rest):] == [e.id for e in everything][-len(rest):]
    assert resumed[-1].kind == "done"


def test_resume_with_last_event_id_query_parameter(api: httpx.Client) -> None:
    created = create(api)
    first = follow(api, created["stream_url"], limit=1)
    rest = follow(api, f"{created['stream_url']}&lastEventId={first[0].id}")
    assert first[0].id not in [e.id for e in rest]
    assert rest[-1].kind == "done"


def test_resume_after_done_is_204(api: httpx.Client) -> None:
    created = create(api)
    events = follow(api, created["stream_url"])
    answer = api.get(created["stream_url"], headers={"Last-Event-ID": events[-1].id})
    assert answer.status_code == 204 and answer.content == b""


def test_unknown_last_event_id_gets_the_current_snapshot(api: httpx.Client) -> None:
    created = create(api)
    follow(api, created["stream_url"])
    for last in ("0-0", "never-issued"):
        events = follow(api, created["stream_url"], last_event_id=last)
        assert [e.kind for e in events] == ["message", "done"]
        assert events[0].data["status"] == "succeeded"


def test_stream_headers_and_first_bytes(api: httpx.Client) -> None:
    created = create(api)
    with api.stream("GET", created["stream_url"]) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        assert "content-encoding" not in response.headers
        first = next(response.iter_raw())
        assert first.startswith(b"retry: ")


def test_heartbeat_comments_while_nothing_happens(api: httpx.Client) -> None:
    # Starting for 4 s: nothing changes, so the stream must send comments (interval 1 s here).
    created = create(api, prompt="slow", steps=2, step_delay=0.05, boot_delay=4)
    comments = 0
    with api.stream("GET", created["stream_url"]) as response:
        for line in response.iter_lines():
            if line.startswith(": hb"):
                comments += 1
                if comments == 2:
                    break
    assert comments == 2


def test_same_state_is_never_sent_twice(api: httpx.Client) -> None:
    created = create(api, prompt="idle", steps=2, step_delay=0.05, boot_delay=2)
    events = follow(api, created["stream_url"])
    assert_no_repeats(events)
    assert [s["status"] for s in snapshots(events)].count("starting") == 1


def test_stream_ends_after_max_age_and_resumes(start_server: Any) -> None:
    server: RelayServer = start_server({"RELAY_STREAM_MAX_AGE": "1"})
    with httpx.Client(base_url=server.url, timeout=10) as client:
        created = create(client, **{**FAST_IMAGE, "steps": 30, "step_delay": 0.1})
        collected: list[Event] = []
        for _ in range(10):
            last = collected[-1].id if collected else None
            collected += follow(client, created["stream_url"], last_event_id=last)
            if collected and collected[-1].kind == "done":
                break
        assert_no_repeats(collected)
        assert collected[-1].kind == "done"
        assert snapshots(collected)[-1]["status"] == "succeeded"


def test_upstream_failing_for_a_while_is_reported_and_the_prediction_still_succeeds(
        api: httpx.Client) -> None:
    # The bar: upstream answering 500 for 5 s in the middle of an ~8 s prediction.
    created = create(api, **{**FAST_IMAGE, "steps": 40, "step_delay": 0.2})
    fault = api.post("/emulator/_emulator/faults", json={
        "status": 500, "seconds": 5, "path_prefix": f"/v1/predictions/{created['id']}"})
    assert fault.status_code == 200, fault.text
    try:
        events = follow(api, created["stream_url"])
    finally:
        api.delete("/emulator/_emulator/faults")
    upstream = [e.data["state"] for e in events if e.kind == "upstream"]
    assert upstream[0] == "degraded" and upstream[-1] == "ok"
    assert snapshots(events)[-1]["status"] == "succeeded"


def test_throttling_is_reported_with_the_retry_delay(api: httpx.Client) -> None:
    created = create(api, **{**FAST_IMAGE, "steps": 10, "step_delay": 0.1})
    api.post("/emulator/_emulator/faults", json={
        "status": 429, "count": 2, "retry_after": 1, "path_prefix": f"/v1/predictions/{created['id']}"})
    try:
        events = follow(api, created["stream_url"])
    finally:
        api.delete("/emulator/_emulator/faults")
    degraded = [e.data for e in events if e.kind == "upstream" and e.data["state"] == "degraded"]
    assert degraded and degraded[0]["retry_in"] >= 1
    assert snapshots(events)[-1]["status"] == "succeeded"


def test_many_subscribers_share_one_upstream_follower(api: httpx.Client) -> None:
    def gets(prediction_id: str) -> int:
        stats = api.get("/emulator/_emulator/stats").json()
        return int(stats.get("per_prediction", {}).get(prediction_id, {}).get("GET", 0))

    one = create(api, **{**FAST_IMAGE, "steps": 10, "step_delay": 0.1})
    follow(api, one["stream_url"])
    many = create(api, **{**FAST_IMAGE, "steps": 10, "step_delay": 0.1})
    streams = [iter_events(api, many["stream_url"]) for _ in range(20)]
    for stream in streams:
        next(stream)
    for stream in streams:
        assert list(stream)[-1].kind == "done"
    assert gets(many["id"]) <= 1.1 * gets(one["id"]) + 1, (gets(many["id"]), gets(one["id"]))


def test_multiplexed_stream_follows_several_and_ends_when_all_are_done(api: httpx.Client) -> None:
    quick = create(api, **{**FAST_IMAGE, "steps": 3})
    slow = create(api, "relay/text-demo", prompt="more", max_tokens=15, token_delay=0.05, boot_delay=0)
    tokens = [c["stream_url"].split("token=")[1] for c in (quick, slow)]
    url = "/api/events?" + "&".join(f"watch={t}" for t in tokens)
    events = follow(api, url)
    done = [e.data["id"] for e in events if e.kind == "done"]
    assert sorted(done) == sorted([quick["id"], slow["id"]])
    assert {e.data["id"] for e in events} == {quick["id"], slow["id"]}
    assert all(len(e.id.split(",")) == 2 for e in events)
    # A resume from the middle sends exactly the rest.
    middle = len(events) // 2
    rest = follow(api, url, last_event_id=events[middle].id)
    assert [e.id for e in rest] == [e.id for e in events[middle + 1:]]
    assert api.get(url, headers={"Last-Event-ID": events[-1].id}).status_code == 204


def test_seed_routes_work_as_before(api: httpx.Client) -> None:
    answer = api.post("/api/prediction", json={"model": "relay/image-demo", "input": FAST_IMAGE})
    assert answer.status_code == 201
    created = answer.json()
    token = created["stream_url"].split("token=")[1]
    events = follow(api, f"/api/prediction?id={created['id']}&token={token}")
    assert events[-1].kind == "done"


def test_worker_shutdown_ends_streams_promptly(start_server: Any) -> None:
    import signal
    import time

    server: RelayServer = start_server()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        created = create(client, prompt="long", steps=100, step_delay=0.2)
        stream = iter_events(client, created["stream_url"])
        next(stream)
        began = time.monotonic()
        server.stop(signal.SIGTERM)
        with pytest.raises((httpx.HTTPError, StopIteration)):
            while True:
                next(stream)
        assert time.monotonic() - began < 10


def test_models_and_health(api: httpx.Client) -> None:
    models = api.get("/api/models").json()["models"]
    kinds = {m["name"]: m["kind"] for m in models}
    assert set(kinds) == {f"relay/{n}-demo" for n in ("image", "text", "audio", "json", "caption")}
    assert kinds["relay/image-demo"] == "image" and kinds["relay/text-demo"] == "text"
    health = api.get("/healthz").json()
    assert health["backend"] == "emulator" and health["hub"]["kind"] == "memory"
    wait_until(lambda: api.get("/healthz").json()["upstream"]["state"] == "ok")
