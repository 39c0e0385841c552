"""A create whose answer is lost on the way back, resent with the same Idempotency-Key, creates once.

This is what the browser client does (static/client/client.js start(): a network error resends
the POST with the same key): the first POST reaches Relay and creates upstream, but a proxy in
between drops the connection before the answer gets through, so the client sees only a network
error. The resend must get the first answer (same id) and the emulator must see one create.
The first visitor has no cookie yet (it never saw the first answer), so both POSTs are scoped
by the client address; the guard's state is shared by 3 workers through Redis, and then
(no REDIS_URL) through the SQLite file of the run records.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from testbed import EmulatorServer, RelayServer

pytestmark = pytest.mark.timeout(240)


class LosesFirstAnswer:
    """A TCP proxy to `port` that cuts the first connection as soon as its answer starts."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cut = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, socket.create_connection(("127.0.0.1", self.port)) as up:
            threading.Thread(target=self._pump, args=(conn, up), daemon=True).start()
            lose = self.cut == 0
            try:
                while chunk := up.recv(65536):
                    if lose:
                        self.cut += 1  # the server has answered: the create happened
                        conn.shutdown(socket.SHUT_RDWR)
                        return
                    conn.sendall(chunk)
            except OSError:
                return  # either side hung up (a reset, as a real proxy sees them): nothing to relay

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass

    def close(self) -> None:
        self._listener.close()


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    made = EmulatorServer(tmp_path_factory.mktemp("emulator")).start(timeout=60)
    yield made
    made.stop()


def send_with_retries(url: str, key: str, attempts: int = 3) -> tuple[httpx.Response, int]:
    """POST one create the way the browser client does; (its answer, network errors seen)."""
    body = {"model": "relay/image-demo", "input": {"prompt": "a lighthouse"}}
    for attempt in range(attempts):
        try:
            return httpx.post(url + "/api/predictions", json=body, timeout=30,
                              headers={"Idempotency-Key": key, "Connection": "close"}), attempt
        except httpx.TransportError:
            continue
    raise AssertionError("every attempt failed")


@pytest.mark.parametrize("shared", ["redis", "sqlite"])
def test_a_resent_create_after_a_lost_answer_creates_once(start_server: Any, request: pytest.FixtureRequest,
                                                           emulator: EmulatorServer, shared: str) -> None:
    env = {"REPLICATE_BASE_URL": emulator.url, "RELAY_BUDGET": "3/hour"}
    if shared == "redis":
        url = str(request.getfixturevalue("redis_url")).rsplit("/", 1)[0] + "/15"
        redis.Redis.from_url(url).flushdb()
        env["REDIS_URL"] = url
    server: RelayServer = start_server(env, workers=3, start_timeout=120)
    proxy = LosesFirstAnswer(int(server.url.rsplit(":", 1)[1]))
    try:
        before = emulator.creates()
        answer, errors = send_with_retries(proxy.url, "retry-key-1")
        assert proxy.cut == 1 and errors == 1  # the first answer really was lost
        assert answer.status_code == 201
        assert emulator.creates() - before == 1
        # The same key straight to the server answers the same prediction again ...
        again = httpx.post(server.url + "/api/predictions", headers={"Idempotency-Key": "retry-key-1"},
                           json={"model": "relay/image-demo", "input": {"prompt": "ignored"}}, timeout=30)
        assert again.json()["id"] == answer.json()["id"]
        # ... and a new key is a new create.
        fresh, _ = send_with_retries(server.url, "retry-key-2")
        assert fresh.status_code == 201 and fresh.json()["id"] != answer.json()["id"]
        assert emulator.creates() - before == 2
    finally:
        proxy.close()
