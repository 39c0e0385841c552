"""How many streams one client may hold (RELAY_MAX_STREAMS_PER_CLIENT), attacked from outside with
real sockets, and a chunked body over the limit (only a real server reads one).

The creation rate, the allow-list and the size limits are tested in-process: tests/app/test_limits.py.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from testbed import RelayServer, wait_until
from testbed.checks import assert_error
from testbed.sse import held_open

IMAGE = {"prompt": "counted", "steps": 2, "step_delay": 0.01, "boot_delay": 0}
HELD = {"prompt": "held", "steps": 2, "step_delay": 0.01, "boot_delay": 300}  # stays `starting`


def body(model: str = "relay/image-demo", **input: Any) -> dict[str, Any]:
    return {"model": model, "input": input or IMAGE}


# -- open streams per client -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayServer]:
    server = RelayServer({"RELAY_MAX_STREAMS_PER_CLIENT": "3", "RELAY_TRUSTED_PROXIES": "1"},
                         tmp_path_factory.mktemp("capped")).start()
    yield server
    server.stop(signal.SIGINT)


def can_hold_three(client: httpx.Client, url: str) -> bool:
    """True when this client can hold the cap's 3 streams at once."""
    with ExitStack() as streams:
        return all(streams.enter_context(held_open(client, url)).status_code == 200 for _ in range(3))


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
        answers = [held.enter_context(held_open(client, u)) for u in (url, url, both)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        for extra in (url, both, f"/api/prediction?id={first['id']}&token={url.split('token=')[1]}"):
            refused = client.get(extra)
            assert_error(refused, 429, "too_many_streams")
            assert int(refused.headers["Retry-After"]) >= 1
        # Someone else, behind the same trusted proxy, is not affected.
        with held_open(client, url, **{"X-Forwarded-For": "203.0.113.50"}) as other:
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
