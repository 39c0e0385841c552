"""A reader that stops reading costs the server (almost) nothing, however much is published.

The hub keeps one bounded history per prediction and a cursor per subscriber;
under gevent a stream whose socket is full blocks in its write, so nothing
queues up for it. This proves it from the outside: a raw socket follows a
prediction and never reads while 10,000 events (about 11 MB of SSE) are
published to that prediction by signed webhook deliveries, and the gunicorn
worker's resident memory is measured before and after.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import psutil
import pytest
from standardwebhooks.webhooks import Webhook

from relay.emulator import token_from_secret
from testbed import TEST_SECRET, RelayServer, free_port, wait_until

EVENTS = 10_000
PADDING = "x" * 1000  # every snapshot carries ~1.1 KB of logs: 10,000 of them are ~11 MB
RSS_BUDGET = 5 * 2**20


@pytest.fixture(scope="module")
def hooked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RelayServer, str]]:
    """A server in webhook mode, with the emulator's signing secret."""
    port = free_port()
    server = RelayServer({"RELAY_PUBLIC_URL": f"http://127.0.0.1:{port}", "RELAY_LOG_LEVEL": "WARNING"},
                         tmp_path_factory.mktemp("slow"), port=port).start()
    secret = httpx.get(f"{server.url}/emulator/v1/webhooks/default/secret",
                       headers={"Authorization": f"Bearer {token_from_secret(TEST_SECRET)}"}).json()["key"]
    yield server, secret
    server.stop(signal.SIGINT)


def worker(server: RelayServer) -> psutil.Process:
    assert server.process is not None
    children = psutil.Process(server.process.pid).children()
    assert len(children) == 1, children
    return children[0]


def held(client: httpx.Client) -> dict[str, Any]:
    """A prediction the emulator keeps in `starting` for minutes: only our deliveries move it."""
    answer = client.post("/api/predictions", json={"model": "relay/image-demo", "input": {
        "prompt": "held", "steps": 2, "step_delay": 0.01, "boot_delay": 300}})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def deliver(url: str, secret: str, prediction_id: str, numbers: range, status: str = "processing") -> None:
    """Signed deliveries, one per number, each a new state of the same size."""
    signer = Webhook(secret)
    with httpx.Client(base_url=url, timeout=30) as client:
        for n in numbers:
            body = json.dumps({"id": prediction_id, "status": status, "input": {}, "output": None,
                               "error": None, "created_at": "2026-01-01T00:00:00Z",
                               "logs": f"state {n:06d} {PADDING}\n"})
            msg_id = f"m{prediction_id[:6]}{n}"
            # Whole seconds on both sides: a float just short of the next second becomes that
            # second in a datetime (microseconds round), and the signature would name another time.
            now = int(time.time())
            stamp = datetime.fromtimestamp(now, tz=UTC)
            answer = client.post("/api/webhooks/replicate", content=body.encode(), headers={
                "webhook-id": msg_id, "webhook-timestamp": str(now),
                "webhook-signature": signer.sign(msg_id, stamp, body), "content-type": "application/json"})
            assert answer.status_code == 200 and answer.json()["outcome"] == "new", answer.text


def deliver_many(url: str, secret: str, prediction_id: str, count: int, start: int = 0) -> None:
    """`count` deliveries from 4 client threads (the server is the bottleneck, not the test)."""
    chunks = [range(start + i, start + count, 4) for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        for done in [pool.submit(deliver, url, secret, prediction_id, chunk) for chunk in chunks]:
            done.result()


class StalledReader:
    """A raw socket that asks for a stream, reads its first event, then stops reading."""

    def __init__(self, server: RelayServer, path: str) -> None:
        self.sock = socket.socket()
        # A small receive window: the kernel can hold little for us, so the server's writes block soon.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", server.port))
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                          "Accept: text/event-stream\r\n\r\n".encode())
        self.received = b""
        self.sock.settimeout(10)
        while b"\ndata:" not in self.received:
            self.received += self.sock.recv(4096)
        assert self.received.startswith(b"HTTP/1.1 200"), self.received[:200]

    def drain_until(self, marker: bytes, timeout: float = 60) -> bytes:
        """Read everything the server sends until `marker` shows up."""
        deadline = time.monotonic() + timeout
        while marker not in self.received:
            assert time.monotonic() < deadline, f"{marker!r} not received"
            chunk = self.sock.recv(65536)
            assert chunk, "the server closed the stream early"
            self.received += chunk
        return self.received

    def close(self) -> None:
        self.sock.close()


def coalesced(client: httpx.Client) -> float:
    text = client.get("/metrics").text
    match = re.search(r'^relay_slow_consumers_total\{action="coalesced"\} ([0-9.e+]+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_a_reader_that_never_reads_does_not_grow_the_worker(hooked: tuple[RelayServer, str],
                                                            request: pytest.FixtureRequest) -> None:
    server, secret = hooked
    client = httpx.Client(base_url=server.url, timeout=30)
    request.addfinalizer(client.close)
    # Warm up on another prediction, stalled reader included, so the allocator's arenas and the
    # imports a first delivery pulls in are already paid for when the baseline is taken.
    warm = held(client)
    warm_reader = StalledReader(server, warm["stream_url"])
    deliver_many(server.url, secret, warm["id"], 6000)
    warm_reader.close()

    target = held(client)
    reader = StalledReader(server, target["stream_url"])
    request.addfinalizer(reader.close)
    wait_until(lambda: client.get("/healthz").json()["streams"] >= 1)
    coalesced_before = coalesced(client)
    process = worker(server)
    before = process.memory_info().rss
    started = time.monotonic()
    deliver_many(server.url, secret, target["id"], EVENTS)
    elapsed = time.monotonic() - started
    after = process.memory_info().rss
    growth = after - before
    print(f"\nworker RSS {before / 2**20:.1f} MB -> {after / 2**20:.1f} MB "
          f"(+{growth / 2**20:.2f} MB) for {EVENTS} events in {elapsed:.1f} s")
    assert growth < RSS_BUDGET, f"the worker grew by {growth / 2**20:.1f} MB while a reader stalled"

    # The reader was really stalled: it has read only the start of the stream.
    assert len(reader.received) < 64 * 1024
    # One more state, after all the others: the latest one. Now the reader reads again, and is
    # coalesced to the latest state instead of being sent 10,000 events.
    deliver(server.url, secret, target["id"], range(EVENTS, EVENTS + 1))
    received = reader.drain_until(f"state {EVENTS:06d}".encode())
    assert received.count(b"\ndata:") < EVENTS // 4
    wait_until(lambda: coalesced(client) > coalesced_before)
    # And it ends cleanly with the prediction.
    deliver(server.url, secret, target["id"], range(EVENTS + 1, EVENTS + 2), "canceled")
    reader.drain_until(b"event: done")
