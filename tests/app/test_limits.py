"""Who may create how much, in-process: the creation rate limit per client address (RELAY_RATE_LIMIT,
shared by both create routes, X-Forwarded-For only through RELAY_TRUSTED_PROXIES), the model
allow-list on every way of naming a model, and body and input size limits.

Open streams per client, which need real sockets, are tested in tests/system/test_abuse_limits.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from relay.emulator.models import MODELS
from testbed.checks import assert_error, upstream_creates
from testbed.inprocess import in_process_app, in_process_client
from testbed.sse import held_open

IMAGE = {"prompt": "counted", "steps": 2, "step_delay": 0.01, "boot_delay": 0}
HELD = {"prompt": "held", "steps": 2, "step_delay": 0.01, "boot_delay": 300}  # stays `starting`
IMAGE_VERSION = MODELS["relay/image-demo"].version_id
TEXT_VERSION = MODELS["relay/text-demo"].version_id


def body(model: str = "relay/image-demo", **input: Any) -> dict[str, Any]:
    return {"model": model, "input": input or IMAGE}


# -- creation rate ---------------------------------------------------------------------------------

def test_default_limit_is_ten_creations_a_minute_shared_by_both_routes(
        make_client: Callable[..., httpx.Client]) -> None:
    with make_client({"RELAY_RATE_LIMIT": ""}) as client:  # unset: the default applies
        for n in range(10):
            path = "/api/predictions" if n % 2 else "/api/prediction"
            assert client.post(path, json=body()).status_code == 201, n
        before = upstream_creates(client)
        for path in ("/api/predictions", "/api/prediction"):
            answer = client.post(path, json=body())
            payload = assert_error(answer, 429, "rate_limited")
            assert 1 <= int(answer.headers["Retry-After"]) <= 61
            assert "10 per 1 minute" in payload["error"]
        # Refused before anything else: no upstream call, and a bad body is refused the same way.
        assert upstream_creates(client) == before
        assert_error(client.post("/api/predictions", content=b"{", headers={"content-type": "application/json"}),
                     429, "rate_limited")
        # Another address is not what the header says: with no trusted proxy it is ignored.
        assert_error(client.post("/api/predictions", json=body(), headers={"X-Forwarded-For": "198.51.100.7"}),
                     429, "rate_limited")
        # Reading is not limited, and neither is the signed webhook.
        for _ in range(15):
            assert client.get("/api/models").status_code == 200
            assert client.post("/api/webhooks/replicate", content=b"{}").status_code == 400


def test_through_a_trusted_proxy_each_client_address_has_its_own_count(
        make_client: Callable[..., httpx.Client]) -> None:

    def create(forwarded_for: str) -> int:
        return client.post("/api/predictions", json=body(), headers={"X-Forwarded-For": forwarded_for}).status_code

    with make_client({"RELAY_RATE_LIMIT": "3/minute", "RELAY_TRUSTED_PROXIES": "1"}) as client:
        assert [create("203.0.113.1") for _ in range(4)] == [201, 201, 201, 429]
        assert create("203.0.113.2") == 201
        # A client cannot choose its address: the proxy appends the real one, which is the one counted.
        assert create("203.0.113.99, 203.0.113.1") == 429
        # One IPv6 host is handed a /64: its addresses share a count; the next /64 is someone else.
        assert [create(f"2001:db8:0:1::{n}") for n in range(1, 5)] == [201, 201, 201, 429]
        assert create("2001:db8:0:2::1") == 201


def test_a_limit_per_hour_is_honoured(make_client: Callable[..., httpx.Client]) -> None:
    with make_client({"RELAY_RATE_LIMIT": "2 per hour"}) as client:
        assert [client.post("/api/predictions", json=body()).status_code for _ in range(3)] == [201, 201, 429]
        answer = client.post("/api/prediction", json=body())
        assert 3000 < int(answer.headers["Retry-After"]) <= 3601


# -- the allow-list, on every way of naming a model -------------------------------------------------

@pytest.fixture(scope="module")
def pinned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """Image demo at any version; text demo pinned to its one real version."""
    app = in_process_app(tmp_path_factory.mktemp("pinned"),
                         {"RELAY_ALLOWED_MODELS": f"relay/image-demo,relay/text-demo:{TEXT_VERSION}"})
    with in_process_client(app) as client:
        yield client
    app.extensions["relay"].shutdown()


OTHER_VERSION = "e" * 64
TEXT = {"prompt": "x", "max_tokens": 2, "token_delay": 0, "boot_delay": 0}


@pytest.mark.parametrize(("request_body", "expected"), [
    ({"model": "relay/image-demo", "input": IMAGE}, 201),
    ({"model": "Relay/Image-Demo", "input": IMAGE}, 201),  # names are case-insensitive, as on Replicate
    ({"model": "relay/text-demo", "input": TEXT}, 201),  # runs the pinned version
    ({"version": TEXT_VERSION, "input": TEXT}, 201),
    ({"version": f"relay/text-demo:{TEXT_VERSION}", "input": TEXT}, 201),
    ({"version": f"relay/image-demo:{IMAGE_VERSION}", "input": IMAGE}, 201),
    ({"model": "relay/secret-model", "input": IMAGE}, 403),
    ({"model": "evil/image-demo", "input": IMAGE}, 403),
    ({"model": "relay/image-demo-2", "input": IMAGE}, 403),
    ({"version": IMAGE_VERSION, "input": IMAGE}, 403),  # a bare id must be listed as such
    ({"version": OTHER_VERSION, "input": IMAGE}, 403),
    ({"version": f"relay/text-demo:{OTHER_VERSION}", "input": TEXT}, 403),  # not the pinned version
    ({"version": f"evil/model:{TEXT_VERSION}", "input": TEXT}, 403),
    ({"version": f"relay/secret:{IMAGE_VERSION}", "input": IMAGE}, 403),
    ({"model": "relay/іmage-demo", "input": IMAGE}, 400),  # a Cyrillic і is not a name
    ({"model": "relay/image-demo ", "input": IMAGE}, 400),
    ({"model": "relay/image-demo:" + IMAGE_VERSION, "input": IMAGE}, 400),
    ({"model": "../relay/image-demo", "input": IMAGE}, 400),
    ({"version": TEXT_VERSION.upper(), "input": TEXT}, 400),
    ({"version": TEXT_VERSION + "0", "input": TEXT}, 400),
    ({"version": f"relay/text-demo:{TEXT_VERSION}:x", "input": TEXT}, 400),
    ({"version": f"relay/text-demo:{TEXT_VERSION[:-1]}", "input": TEXT}, 400),
])
@pytest.mark.parametrize("path", ["/api/predictions", "/api/prediction"])
def test_only_allowed_models_and_versions_run(pinned: httpx.Client, path: str,
                                              request_body: dict[str, Any], expected: int) -> None:
    before = upstream_creates(pinned)
    answer = pinned.post(path, json=request_body)
    if expected == 201:
        assert answer.status_code == 201, answer.text
        assert upstream_creates(pinned) == before + 1
    else:
        assert_error(answer, expected, "model_not_allowed" if expected == 403 else "invalid_request")
        assert upstream_creates(pinned) == before  # a refused model never reaches Replicate


# -- sizes ------------------------------------------------------------------------------------------

def test_the_body_limit_follows_relay_max_body_bytes(make_client: Callable[..., httpx.Client]) -> None:
    with make_client({"RELAY_MAX_BODY_BYTES": "2048"}) as client:
        small = json.dumps(body(prompt="y" * 1500, steps=2, step_delay=0))
        assert client.post("/api/predictions", content=small, headers={"content-type": "application/json"}
                           ).status_code == 201
        large = json.dumps(body(prompt="y" * 3000))
        assert_error(client.post("/api/predictions", content=large, headers={"content-type": "application/json"}),
                     413, "payload_too_large")


@pytest.mark.parametrize(("model_input", "refused"), [
    ({f"k{n}": n for n in range(201)}, True),
    ({"list": list(range(200))}, True),  # 1 key + 200 values
    ({"k" * 201: 1}, True),
    ({"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": 1}}}}}}}}, True),  # 9 levels
    ({"prompt": "x" * 20_001}, True),
    ({"prompt": "x" * 20_000, "steps": 2, "step_delay": 0}, False),
    ({"prompt": "x", "extra": {f"k{n}": n for n in range(150)}}, False),
    ({"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}, "prompt": "x"}, False),  # 8 levels
])
def test_input_limits(client: httpx.Client, model_input: dict[str, Any], refused: bool) -> None:
    answer = client.post("/api/predictions", json={"model": "relay/image-demo", "input": model_input})
    if refused:
        assert_error(answer, 400, "invalid_request")
    else:
        # Within Relay's size limits: next comes the model's schema, which refuses inputs it does
        # not name (400 invalid_input, after the limits were passed), or the create.
        assert answer.status_code in (201, 400), answer.text
        assert answer.status_code == 201 or answer.json()["code"] == "invalid_input", answer.text


def test_too_many_watch_tokens_on_one_stream_are_refused(client: httpx.Client) -> None:
    created = client.post("/api/predictions", json=body()).json()
    token = created["stream_url"].split("token=")[1]
    assert_error(client.get("/api/events?" + "&".join([f"watch={token}"] * 33)), 400, "invalid_request")
    with held_open(client, "/api/events?" + "&".join([f"watch={token}"] * 32)) as answer:
        assert answer.status_code == 200
