"""The spend guard in one process (docs/spend-guard.md): quotas, the compute budget, Idempotency-Key,
grants and RELAY_DEADLINE, on the real `replicate` client against the standalone emulator.

What reached "Replicate" is counted by the emulator itself (its request stats), or, for
the Cancel-After header, by a small recording proxy in front of it.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient

from relay import create_app
from relay.guard.grants import mint
from testbed import EmulatorServer, wait_until

SECRET = "grant-secret-for-tests"
LONG = {"prompt": "a long one", "steps": 200, "step_delay": 0.1}


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    made = EmulatorServer(tmp_path_factory.mktemp("emulator")).start(timeout=60)  # a busy machine starts Python slowly
    yield made
    made.stop()


@pytest.fixture
def make_app(tmp_path: Path, emulator: EmulatorServer) -> Iterator[Any]:
    apps: list[Flask] = []

    def make(**env: Any) -> Flask:
        config = {"INSTANCE_PATH": str(tmp_path / f"i{len(apps)}"), "SECRET_KEY": "guard-test-secret-0123456789",
                  "REPLICATE_BASE_URL": emulator.url, "RELAY_POLL_INTERVAL": "0.1",
                  "RELAY_RATE_LIMIT": "100000/minute", **env}
        app = create_app(config)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["relay"].shutdown()


def create(client: FlaskClient, headers: dict[str, str] | None = None, **input: Any) -> Any:
    body = {"model": "relay/image-demo", "input": {"prompt": "a lighthouse", **input}}
    return client.post("/api/predictions", json=body, headers=headers or {})


# -- quota ---------------------------------------------------------------------------------
def test_quota_counts_the_cookie_and_the_address_of_a_cookieless_create(make_app: Any) -> None:
    app = make_app(RELAY_QUOTA="2/hour")
    alice = app.test_client()
    assert create(alice).status_code == 201  # no cookie yet: counts for her new cookie and the address
    assert create(alice).status_code == 201  # with the cookie: counts for the cookie only
    refused = create(alice)
    assert refused.status_code == 429 and refused.json["code"] == "quota_exceeded"
    assert 1 <= int(refused.headers["Retry-After"]) <= 3600
    # A second cookieless visitor from the same address: the address has one use left, then none.
    assert create(app.test_client()).status_code == 201
    third = create(app.test_client())
    assert third.status_code == 429 and third.json["code"] == "quota_exceeded"


def test_a_refused_create_sends_nothing_upstream(make_app: Any, emulator: EmulatorServer) -> None:
    app = make_app(RELAY_BUDGET="1/day")
    client = app.test_client()
    assert create(client).status_code == 201
    before = emulator.creates()
    refused = create(client)
    assert refused.status_code == 429 and refused.json["code"] == "budget_exhausted"
    assert "Retry-After" in refused.headers
    assert emulator.creates() == before
    health = client.get("/healthz").json["guard"]["creations"]
    assert health["remaining"] == 0 and health["limit"] == 1
    assert 'relay_budget_remaining{kind="creations"} 0.0' in client.get("/metrics").text


def test_a_create_refused_upstream_gives_its_budget_back(make_app: Any) -> None:
    client = make_app(RELAY_BUDGET="1/day").test_client()
    assert create(client, steps="many").status_code in (400, 422)  # Replicate-style 422 for bad input
    assert create(client).status_code == 201


# -- compute seconds -----------------------------------------------------------------------
def test_compute_budget_counts_running_predictions_from_started_at(make_app: Any) -> None:
    app = make_app(RELAY_BUDGET_SECONDS="1.5/hour")
    client = app.test_client()
    first = create(client, **LONG)
    assert first.status_code == 201
    assert create(client, **LONG).status_code == 201  # nothing has run yet
    # Two running predictions use the 1.5 s within about 0.75 s of starting.
    wait_until(lambda: client.get("/healthz").json["guard"]["seconds"]["used"] >= 1.5, timeout=10)
    refused = create(client)
    assert refused.status_code == 429 and refused.json["code"] == "budget_exhausted"
    assert int(refused.headers["Retry-After"]) >= 1
    for answer in (first,):
        client.post(answer.json["cancel_url"])


# -- Idempotency-Key -----------------------------------------------------------------------
def test_a_repeated_key_answers_the_first_answer_and_creates_once(make_app: Any,
                                                                 emulator: EmulatorServer) -> None:
    app = make_app(RELAY_BUDGET="2/day")
    client = app.test_client()
    before = emulator.creates()
    first = create(client, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201
    again = client.post("/api/predictions", data="not even JSON",  # a repeat's body is ignored
                        headers={"Idempotency-Key": "k-1", "Content-Type": "application/json"})
    assert again.status_code == 201 and again.json == first.json
    assert emulator.creates() == before + 1
    # The repeat counted against no budget: one creation is still left.
    assert create(client, headers={"Idempotency-Key": "k-2"}).status_code == 201
    assert create(client, headers={"Idempotency-Key": "k-3"}).json["code"] == "budget_exhausted"
    # The key belongs to the visitor: another visitor's k-1 is a new create (and over budget).
    other = app.test_client()
    other.get("/")  # a page gives it a cookie of its own
    assert create(other, headers={"Idempotency-Key": "k-1"}).json["code"] == "budget_exhausted"


def test_a_failed_first_request_does_not_hold_its_key(make_app: Any) -> None:
    client = make_app().test_client()
    bad = client.post("/api/predictions", json={"model": "relay/image-demo"}, headers={"Idempotency-Key": "x"})
    assert bad.status_code == 400
    assert create(client, headers={"Idempotency-Key": "x"}).status_code == 201
    too_long = create(client, headers={"Idempotency-Key": "y" * 300})
    assert too_long.status_code == 400 and too_long.json["code"] == "invalid_request"


# -- grants --------------------------------------------------------------------------------
def grant_header(**payload: Any) -> dict[str, str]:
    return {"Authorization": "Relay-Grant " + mint(SECRET, {"exp": time.time() + 600, **payload})}


def test_grants_are_required_checked_and_counted(make_app: Any, emulator: EmulatorServer) -> None:
    client = make_app(RELAY_GRANT_SECRET=SECRET).test_client()
    before = emulator.creates()
    good = mint(SECRET, {"sub": "user-1", "exp": time.time() + 600, "models": ["relay/image-demo"], "max": 2})
    body, _, signature = good.partition(".")
    refusals = {
        "missing": {},
        "wrong scheme": {"Authorization": "Bearer " + good},
        "malformed": {"Authorization": "Relay-Grant not-a-grant"},
        "tampered": {"Authorization": f"Relay-Grant {body[:-2]}AA.{signature}"},
        "wrong secret": {"Authorization": "Relay-Grant " + mint("other", {"exp": time.time() + 600})},
        "expired": grant_header(exp=time.time() - 1),
        "no exp": {"Authorization": "Relay-Grant " + mint(SECRET, {"sub": "x"})},
        "wrong model": grant_header(models=["relay/text-demo"]),
    }
    for name, headers in refusals.items():
        answer = create(client, headers=headers)
        assert (answer.status_code, answer.json["code"]) == (403, "grant_required"), name
        assert answer.json["error"].endswith(".")
    assert emulator.creates() == before
    padded = body + "=" * (-len(body) % 4) + "." + signature + "=" * (-len(signature) % 4)
    assert create(client, headers={"Authorization": f"Relay-Grant {good}"}).status_code == 201
    assert create(client, headers={"Authorization": f"Relay-Grant {padded}"}).status_code == 201
    used_up = create(client, headers={"Authorization": f"Relay-Grant {good}"})
    assert (used_up.status_code, used_up.json["code"]) == (429, "grant_exhausted")
    assert "Retry-After" not in used_up.headers
    assert emulator.creates() == before + 2


def test_a_grant_sub_is_the_visitor_for_quotas(make_app: Any) -> None:
    client = make_app(RELAY_GRANT_SECRET=SECRET, RELAY_QUOTA="1/hour").test_client()
    assert create(client, headers=grant_header(sub="ann")).status_code == 201
    assert create(client, headers=grant_header(sub="ann")).json["code"] == "quota_exceeded"
    assert create(client, headers=grant_header(sub="bob")).status_code == 201


# -- RELAY_DEADLINE ------------------------------------------------------------------------
class _Recorder(http.server.ThreadingHTTPServer):
    def __init__(self, target: str) -> None:
        self.target = target
        self.creates: list[dict[str, str]] = []
        super().__init__(("127.0.0.1", 0), _Forward)

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # a watcher polling as the test ends: nothing to report


class _Forward(http.server.BaseHTTPRequestHandler):
    server: _Recorder

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if self.command == "POST" and self.path.endswith("/predictions"):
            self.server.creates.append(dict(self.headers.items()))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        try:
            answer = httpx.request(self.command, self.server.target + self.path, headers=headers, content=body)
        except httpx.HTTPError:
            answer = httpx.Response(502, json={"detail": "recorder could not reach the emulator"})
        self.send_response(answer.status_code)
        self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = _forward

    def log_message(self, format: str, *args: Any) -> None:
        return None


def test_the_deadline_reaches_replicate_as_cancel_after(make_app: Any, emulator: EmulatorServer) -> None:
    recorder = _Recorder(emulator.url)
    threading.Thread(target=recorder.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{recorder.server_address[1]}"
        with_deadline = make_app(RELAY_DEADLINE="5m", REPLICATE_BASE_URL=url).test_client()
        assert create(with_deadline).status_code == 201
        without = make_app(REPLICATE_BASE_URL=url).test_client()
        assert create(without).status_code == 201
        for client in (with_deadline, without):
            assert isinstance(client.application, Flask)
            client.application.extensions["relay"].shutdown()
    finally:
        recorder.shutdown()
        recorder.server_close()
    assert [headers.get("Cancel-After") for headers in recorder.creates] == ["5m", None]


# -- the queue in one process ----------------------------------------------------------------
def test_a_queued_prediction_streams_its_place_and_a_cancel_gives_its_budget_back(
        make_app: Any, emulator: EmulatorServer) -> None:
    app = make_app(RELAY_MAX_RUNNING="1", RELAY_BUDGET="2/hour")
    client = app.test_client()
    running = create(client, **LONG)
    queued = create(client)
    assert running.json["status"] == "starting"
    assert (queued.json["status"], queued.json["queue"], queued.json["id"][:3]) == ("queued", {"position": 1}, "rq-")
    before = emulator.creates()
    stream = client.get(queued.json["stream_url"], buffered=False)
    chunks = iter(stream.response)
    seen = ""
    while '"status":"queued"' not in seen:
        seen += next(chunks).decode()
    assert '"queue":{"position":1}' in seen
    assert client.post(queued.json["cancel_url"]).json == {"success": True, "id": queued.json["id"],
                                                           "status": "canceled"}
    while "event: done" not in seen:
        seen += next(chunks).decode()
    stream.close()
    assert '"status":"canceled"' in seen
    assert emulator.creates() == before  # the queued one never reached the emulator
    again = create(client)  # the canceled one gave its creation back
    assert again.status_code == 201 and again.json["status"] == "queued"
    assert create(client).json["code"] == "budget_exhausted"
    client.post(running.json["cancel_url"])
