"""relay/stream_open.py: the stream opens answered without Flask, and the ones left to it.

Every other stream test goes through the fast path too (an in-process client and
gunicorn both call the app itself); these hold it to Flask's own answers, which
`app.wsgi_app` gives (the Flask app without the fast path in front).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask

from relay.errors import HubUnavailable
from relay.redis_keys import unavailable
from relay.stream_open import StreamOpener
from testbed.inprocess import BASE_URL, in_process_app, in_process_client, transport_to

WAITING = {"prompt": "fast path", "boot_delay": 300}  # stays `starting`: its stream stays open
HEADERS_OF_A_REQUEST = {"x-request-id"}  # the one header whose value is each request's own


def opener(app: Flask) -> StreamOpener:
    found = getattr(app, "stream_opener", None)
    assert isinstance(found, StreamOpener)
    return found


def flask_only(app: Flask) -> httpx.Client:
    """A client of the Flask app alone: the answers the fast path must match."""
    return httpx.Client(transport=transport_to(app.wsgi_app), base_url=BASE_URL, timeout=10)


@contextmanager
def first_chunk(client: httpx.Client, url: str, **kwargs: Any) -> Iterator[tuple[httpx.Response, bytes]]:
    """The answer to a stream open and its first bytes (the retry hint and the replay); closed after."""
    with client.stream("GET", url, **kwargs) as answer:
        chunk = next(answer.iter_raw()) if answer.status_code == 200 else answer.read()
        yield answer, chunk


def comparable(answer: httpx.Response) -> list[tuple[str, str]]:
    return [(name, "…" if name.lower() in HEADERS_OF_A_REQUEST else value)
            for name, value in answer.headers.multi_items()]


def create(client: httpx.Client, **input: Any) -> dict[str, Any]:
    created = client.post("/api/predictions", json={"model": "relay/image-demo", "input": input or WAITING})
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def test_a_plain_open_is_answered_here_exactly_as_flask_answers_it(app: Flask, client: httpx.Client) -> None:
    created = create(client)
    served = opener(app).served
    with first_chunk(client, created["stream_url"]) as (fast, fast_bytes):
        assert opener(app).served == served + 1
        with flask_only(app) as plain, first_chunk(plain, created["stream_url"]) as (slow, slow_bytes):
            assert opener(app).served == served + 1
            assert fast.status_code == slow.status_code == 200
            assert comparable(fast) == comparable(slow)
            assert fast_bytes == slow_bytes and b'"status":"starting"' in fast_bytes
            assert fast.headers["X-Request-ID"] != slow.headers["X-Request-ID"]
    with first_chunk(client, created["stream_url"], headers={"X-Request-ID": "router-1"}) as (again, _):
        assert again.headers["X-Request-ID"] == "router-1"
    assert opener(app).served == served + 2
    assert app.extensions["relay"].hub.open_streams() == 0  # every one of them closed and let go


CASES: dict[str, Callable[[dict[str, Any]], tuple[str, dict[str, str]]]] = {
    "forged token": lambda c: (f"/api/predictions/{c['id']}/events?token=forged", {}),
    "no token": lambda c: (f"/api/predictions/{c['id']}/events", {}),
    "another prediction's token": lambda c: (
        f"/api/predictions/{c['id']}x/events?{c['stream_url'].split('?')[1]}", {}),
    "another query parameter": lambda c: (c["stream_url"] + "&lastEventId=1-0", {}),
    "a non-ASCII id": lambda c: (f"/api/predictions/{c['id']}é/events?{c['stream_url'].split('?')[1]}", {}),
}


@pytest.mark.parametrize("case", CASES)
def test_what_the_fast_path_leaves_to_flask_is_answered_as_flask_answers_it(
        app: Flask, client: httpx.Client, case: str) -> None:
    created = create(client)
    url, headers = CASES[case](created)
    served = opener(app).served
    with first_chunk(client, url, headers=headers) as (fast, fast_bytes), \
            flask_only(app) as plain, first_chunk(plain, url, headers=headers) as (slow, slow_bytes):
        assert opener(app).served == served  # Flask answered both
        assert fast.status_code == slow.status_code
        assert comparable(fast) == comparable(slow)
        if fast.status_code != 200:
            assert fast.json() == slow.json() and fast.json()["code"]
        else:
            assert fast_bytes == slow_bytes


def test_finished_predictions_are_answered_like_flask_and_heads_and_resumes_after_done_by_it(
        app: Flask, client: httpx.Client) -> None:
    created = create(client, prompt="quick", boot_delay=0, steps=2, step_delay=0)
    events = client.get(created["stream_url"])  # follows it to `done`
    assert events.status_code == 200 and b"event: done" in events.content
    served = opener(app).served
    again = client.get(created["stream_url"])  # its final snapshot and `done`, then the end
    with flask_only(app) as plain:
        assert again.content == plain.get(created["stream_url"]).content
    assert opener(app).served == served + 1
    done_id = [line for line in events.text.splitlines() if line.startswith("id: ")][-1][4:]
    after_done = client.get(created["stream_url"], headers={"Last-Event-ID": done_id})
    assert after_done.status_code == 204
    assert client.head(created["stream_url"]).status_code == 200
    assert opener(app).served == served + 1  # those two were Flask's


def test_a_client_at_its_stream_cap_gets_flasks_429(make_client: Callable[..., httpx.Client]) -> None:
    with make_client({"RELAY_MAX_STREAMS_PER_CLIENT": "1"}) as client:
        created = create(client)
        with first_chunk(client, created["stream_url"]) as (held, _):
            assert held.status_code == 200
            refused = client.get(created["stream_url"])
            assert refused.status_code == 429 and refused.json()["code"] == "too_many_streams"
            assert "Retry-After" in refused.headers
        with first_chunk(client, created["stream_url"]) as (freed, _):
            assert freed.status_code == 200  # the slot came back when the first stream closed


def test_behind_a_trusted_proxy_the_forwarded_client_is_counted_and_https_seen(
        make_client: Callable[..., httpx.Client]) -> None:
    settings = {"RELAY_TRUSTED_PROXIES": "1", "RELAY_MAX_STREAMS_PER_CLIENT": "1"}
    with make_client(settings) as client:
        created = create(client)
        url = created["stream_url"]
        one = {"X-Forwarded-For": "203.0.113.5", "X-Forwarded-Proto": "https"}
        with first_chunk(client, url, headers=one) as (first, _), \
                first_chunk(client, url, headers={"X-Forwarded-For": "203.0.113.6"}) as (other, _):
            assert first.status_code == other.status_code == 200  # two clients, a slot each
            assert first.headers["Strict-Transport-Security"] == "max-age=31536000"
            assert "Strict-Transport-Security" not in other.headers
            assert client.get(url, headers=one).status_code == 429  # the first client's second stream


def test_with_cors_open_the_origin_is_answered_by_flask(make_client: Callable[..., httpx.Client]) -> None:
    with make_client({"RELAY_CORS_ORIGINS": "https://app.example"}) as client:
        created = create(client)
        with first_chunk(client, created["stream_url"], headers={"Origin": "https://app.example"}) as (answer, _):
            assert answer.status_code == 200
            assert answer.headers["Access-Control-Allow-Origin"] == "https://app.example"


@pytest.mark.parametrize("failing", ["knows", "replay"])
def test_when_the_hub_cannot_answer_flask_answers_its_503_and_no_slot_is_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str) -> None:
    app = in_process_app(tmp_path, {"RELAY_MAX_STREAMS_PER_CLIENT": "1"})
    try:
        with in_process_client(app) as client:
            created = create(client)
            hub = app.extensions["relay"].hub

            def down(*args: object, **kwargs: object) -> None:
                raise unavailable()

            monkeypatch.setattr(hub, failing, down)
            answer = client.get(created["stream_url"])
            assert answer.status_code == 503 and answer.json()["code"] == HubUnavailable.code
            assert opener(app).served == 0
            monkeypatch.undo()
            with first_chunk(client, created["stream_url"]) as (back, _):
                assert back.status_code == 200  # the one slot is free: the failed attempts gave theirs back
            assert opener(app).served == 1
    finally:
        app.extensions["relay"].shutdown()
