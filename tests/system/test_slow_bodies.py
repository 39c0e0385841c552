"""Trickled bodies cannot fill a worker: body reads have a deadline; webhook headers come first."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import httpx

from testbed import RelayServer, wait_until


def _trickle(port: int, path: str, headers: str, stop: threading.Event,
             started: threading.Semaphore | None = None) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Content-Length: 5000\r\n{headers}\r\n".encode())
        if started is not None:
            started.release()
        try:
            while not stop.wait(0.5):
                sock.sendall(b" ")
        except OSError:
            return  # the server gave up on us: what the test wants


def _answer(sock: socket.socket) -> bytes:
    """One whole JSON answer (headers and body) from the socket."""
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    return answer


def test_twenty_trickled_uploads_do_not_stop_healthz(start_server: Callable[..., RelayServer]) -> None:
    server = start_server({"RELAY_WORKER_CONNECTIONS": "20", "RELAY_BODY_TIMEOUT": "1"})
    stop = threading.Event()
    started = threading.Semaphore(0)
    threads = [threading.Thread(target=_trickle, args=(server.port, "/api/predictions", "", stop, started),
                                daemon=True) for _ in range(20)]
    try:
        for thread in threads:
            thread.start()
        for _ in threads:  # all 20 connected and trickling
            assert started.acquire(timeout=10)

        def healthy() -> bool:
            try:
                return httpx.get(server.url + "/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, timeout=12, interval=0.2)
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)


def test_a_trickled_create_is_answered_408(start_server: Callable[..., RelayServer]) -> None:
    server = start_server({"RELAY_BODY_TIMEOUT": "1"})
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /api/predictions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{")
        started = time.monotonic()
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"request_timeout" in answer
    assert time.monotonic() - started < 8


def test_a_webhook_without_signature_headers_is_refused_before_its_body(
        start_server: Callable[..., RelayServer]) -> None:
    server = start_server({"RELAY_BODY_TIMEOUT": "30"})
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /api/webhooks/replicate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 4000000\r\n\r\n{")
        answer = _answer(sock)  # within the socket timeout, long before 4 MB or 30 s
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert b"invalid_webhook" in answer


def test_a_webhook_with_a_stale_timestamp_is_refused_before_its_body(
        start_server: Callable[..., RelayServer]) -> None:
    server = start_server({"RELAY_BODY_TIMEOUT": "30", "REPLICATE_WEBHOOK_SECRET": "whsec_dGVzdA=="})
    stale = int(time.time()) - 3600
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /api/webhooks/replicate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"webhook-id: msg_1\r\nwebhook-timestamp: " + str(stale).encode() +
                     b"\r\nwebhook-signature: v1,AAAA\r\nContent-Length: 4000000\r\n\r\n{")
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 403"), answer
    assert b"invalid_signature" in answer
