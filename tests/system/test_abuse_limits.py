"""Who may create how much, and how much one client may hold: limits attacked from outside.

- creations per client address (RELAY_RATE_LIMIT, default 10/minute), shared
  by both create routes, with the address taken from X-Forwarded-For only
  through RELAY_TRUSTED_PROXIES;
- open streams per client address (RELAY_MAX_STREAMS_PER_CLIENT);
- the model allow-list on every way of naming a model;
- body and input size limits.
"""

from __future__ import annotations

import json
import signal
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx
import pytest

from relay.emulator.models import MODELS
from testbed import RelayServer, wait_until

IMAGE = {"prompt": "counted", "steps": 2, "step_delay": 0.01, "boot_delay": 0}
HELD = {"prompt": "held", "steps": 2, "step_delay": 0.01, "boot_delay": 300}  # stays `starting`
IMAGE_VERSION = MODELS["relay/image-demo"].version_id
TEXT_VERSION = MODELS["relay/text-demo"].version_id


def body(model: str = "relay/image-demo", **input: Any) -> dict[str, Any]:
    return {"model": model, "input": input or IMAGE}


def assert_error(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    payload: dict[str, Any] = answer.json()
    assert payload["success"] is False and payload["code"] == code and len(payload["error"]) > 10
    return payload


def upstream_creates(client: httpx.Client) -> int:
    stats = client.get("/emulator/_emulator/stats").json()
    return sum(n for route, n in stats.items() if route.startswith("POST ") and route.endswith("/predictions"))


# -- creation rate ---------------------------------------------------------------------------------

def test_default_limit_is_ten_creations_a_minute_shared_by_both_routes(
        start_server: Callable[..., RelayServer]) -> None:
    server = start_server({"RELAY_RATE_LIMIT": ""})  # unset: the default applies
    with httpx.Client(base_url=server.url, timeout=10) as client:
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
        start_server: Callable[..., RelayServer]) -> None:
    server = start_server({"RELAY_RATE_LIMIT": "3/minute", "RELAY_TRUSTED_PROXIES": "1"})

    def create(forwarded_for: str) -> int:
        return client.post("/api/predictions", json=body(), headers={"X-Forwarded-For": forwarded_for}).status_code

    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert [create("203.0.113.1") for _ in range(4)] == [201, 201, 201, 429]
        assert create("203.0.113.2") == 201
        # A client cannot choose its address: the proxy appends the real one, which is the one counted.
        assert create("203.0.113.99, 203.0.113.1") == 429
        # One IPv6 host is handed a /64: its addresses share a count; the next /64 is someone else.
        assert [create(f"2001:db8:0:1::{n}") for n in range(1, 5)] == [201, 201, 201, 429]
        assert create("2001:db8:0:2::1") == 201


def test_a_limit_per_hour_is_honoured(start_server: Callable[..., RelayServer]) -> None:
    server = start_server({"RELAY_RATE_LIMIT": "2 per hour"})
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert [client.post("/api/predictions", json=body()).status_code for _ in range(3)] == [201, 201, 429]
        answer = client.post("/api/prediction", json=body())
        assert 3000 < int(answer.headers["Retry-After"]) <= 3601


# -- open streams per client -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayServer]:
    server = RelayServer({"RELAY_MAX_STREAMS_PER_CLIENT": "3", "RELAY_TRUSTED_PROXIES": "1"},
                         tmp_path_factory.mktemp("capped")).start()
    yield server
    server.stop(signal.SIGINT)


@contextmanager
def opened(client: httpx.Client, url: str, **headers: str) -> Iterator[httpx.Response]:
    """A stream held open (its first bytes read), closed on exit."""
    with client.stream("GET", url, headers=headers) as answer:
        if answer.status_code == 200:
            next(answer.iter_bytes())
        yield answer


def can_hold_three(client: httpx.Client, url: str) -> bool:
    """True when this client can hold the cap's 3 streams at once."""
    with ExitStack() as streams:
        return all(streams.enter_context(opened(client, url)).status_code == 200 for _ in range(3))


def no_stream_open(client: httpx.Client) -> bool:
    # A stream gives its slot back in the same `finally` that detaches it from the hub; a closed
    # one is noticed at the server's next write to it (a heartbeat, 1 s here).
    return client.get("/healthz").json()["streams"] == 0


@pytest.fixture
def capped_client(capped: RelayServer) -> Iterator[tuple[httpx.Client, dict[str, Any]]]:
    """A client of the capped server with all its slots free, and a prediction that stays running."""
    with httpx.Client(base_url=capped.url, timeout=10) as client:
        held = client.post("/api/predictions", json=body(**HELD)).json()
        wait_until(lambda: no_stream_open(client), timeout=10, interval=0.1)
        yield client, held


def test_streams_per_client_are_capped_and_given_back(capped_client: tuple[httpx.Client, dict[str, Any]]) -> None:
    client, first = capped_client
    second = client.post("/api/predictions", json=body(**HELD)).json()
    url = first["stream_url"]
    both = "/api/events?" + "&".join(f"watch={p['stream_url'].split('token=')[1]}" for p in (first, second))
    with ExitStack() as held:
        answers = [held.enter_context(opened(client, u)) for u in (url, url, both)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        for extra in (url, both, f"/api/prediction?id={first['id']}&token={url.split('token=')[1]}"):
            refused = client.get(extra)
            assert_error(refused, 429, "too_many_streams")
            assert int(refused.headers["Retry-After"]) >= 1
        # Someone else, behind the same trusted proxy, is not affected.
        with opened(client, url, **{"X-Forwarded-For": "203.0.113.50"}) as other:
            assert other.status_code == 200
    wait_until(lambda: no_stream_open(client), timeout=10, interval=0.1)
    assert can_hold_three(client, url)


def test_streams_that_never_run_hold_no_slot(capped_client: tuple[httpx.Client, dict[str, Any]]) -> None:
    """HEAD requests, resumes after `done` (204) and refused tokens build no stream: nothing may leak."""
    client, held = capped_client
    created = client.post("/api/predictions", json=body()).json()
    events = client.get(created["stream_url"]).text
    assert "event: done" in events
    last = [line[4:] for line in events.splitlines() if line.startswith("id: ")][-1]
    for _ in range(5):
        assert client.head(held["stream_url"]).status_code == 200
        assert client.get(created["stream_url"], headers={"Last-Event-ID": last}).status_code == 204
        assert_error(client.get(created["stream_url"] + "x"), 403, "forbidden")
    # Checked at once: these never held a slot, so none has to be noticed and given back.
    assert can_hold_three(client, held["stream_url"])


def test_a_client_that_vanishes_gives_its_slot_back(capped_client: tuple[httpx.Client, dict[str, Any]],
                                                    capped: RelayServer) -> None:
    client, held = capped_client
    for _ in range(3):
        # Connect, ask, and drop the connection without a word.
        with socket.create_connection(("127.0.0.1", capped.port)) as sock:
            sock.sendall(f"GET {held['stream_url']} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert sock.recv(12).startswith(b"HTTP/1.1 200")
    wait_until(lambda: no_stream_open(client), timeout=10, interval=0.1)
    assert can_hold_three(client, held["stream_url"])


# -- the allow-list, on every way of naming a model -------------------------------------------------

@pytest.fixture(scope="module")
def pinned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """Image demo at any version; text demo pinned to its one real version."""
    server = RelayServer({"RELAY_ALLOWED_MODELS": f"relay/image-demo,relay/text-demo:{TEXT_VERSION}"},
                         tmp_path_factory.mktemp("pinned")).start()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client
    server.stop(signal.SIGINT)


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

def test_a_chunked_body_over_the_limit_is_413_without_a_content_length(api: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"model": "relay/image-demo", "input": {"prompt": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}}'

    answer = api.post("/api/predictions", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in answer.request.headers
    assert_error(answer, 413, "payload_too_large")


def test_the_body_limit_follows_relay_max_body_bytes(start_server: Callable[..., RelayServer]) -> None:
    server = start_server({"RELAY_MAX_BODY_BYTES": "2048"})
    with httpx.Client(base_url=server.url, timeout=10) as client:
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
def test_input_limits(api: httpx.Client, model_input: dict[str, Any], refused: bool) -> None:
    answer = api.post("/api/predictions", json={"model": "relay/image-demo", "input": model_input})
    if refused:
        assert_error(answer, 400, "invalid_request")
    else:
        # Within Relay's limits: the emulator decides (it may reject unknown inputs, with 422).
        assert answer.status_code in (201, 422), answer.text
        assert answer.json().get("code") != "invalid_request"


def test_too_many_watch_tokens_on_one_stream_are_refused(api: httpx.Client) -> None:
    created = api.post("/api/predictions", json=body()).json()
    token = created["stream_url"].split("token=")[1]
    assert_error(api.get("/api/events?" + "&".join([f"watch={token}"] * 33)), 400, "invalid_request")
    with opened(api, "/api/events?" + "&".join([f"watch={token}"] * 32)) as answer:
        assert answer.status_code == 200


# -- settings and the client key ---------------------------------------------------------------------

def test_the_new_settings_are_read_and_checked() -> None:
    from relay.config import ConfigError, Settings

    settings = Settings.from_env({"RELAY_MAX_STREAMS_PER_CLIENT": "7",
                                  "RELAY_CORS_ORIGINS": "https://a.example, https://b.example:8443/"})
    assert settings.max_streams_per_client == 7
    assert settings.cors_origins == ("https://a.example", "https://b.example:8443")
    assert Settings.from_env({}).max_streams_per_client == 50 and Settings.from_env({}).cors_origins == ()
    for bad in ({"RELAY_MAX_STREAMS_PER_CLIENT": "0"}, {"RELAY_MAX_STREAMS_PER_CLIENT": "many"},
                {"RELAY_CORS_ORIGINS": "*"}, {"RELAY_CORS_ORIGINS": "https://a.example/path"}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            Settings.from_env(bad)


@pytest.mark.parametrize(("address", "key"), [
    ("203.0.113.7", "203.0.113.7"),
    ("::ffff:203.0.113.7", "203.0.113.7"),  # an IPv4 client on a dual-stack socket
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ("2001:db8:1:2::9", "2001:db8:1:2::/64"),
    ("", "unknown"),
])
def test_client_key(address: str, key: str) -> None:
    from flask import Flask

    from relay.limits import client_key

    with Flask(__name__).test_request_context(environ_base={"REMOTE_ADDR": address}):
        assert client_key() == key
