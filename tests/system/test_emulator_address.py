"""The embedded emulator is reached at the server's own socket, whatever Host the first request names."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from testbed import ROOT, TEST_SECRET, wait_until
from testbed.sse import follow


@pytest.fixture
def decoy() -> Iterator[tuple[str, list[str]]]:
    """A server on another loopback port that only counts what reaches it."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_error(500)

        do_POST = do_GET

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def _gunicorn(bind: str, tmp: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SECRET_KEY": TEST_SECRET, "RELAY_INSTANCE_PATH": str(tmp / "instance"),
           "RELAY_POLL_INTERVAL": "0.1", "RELAY_RATE_LIMIT": "1000/minute"}
    env.pop("REPLICATE_API_TOKEN", None)
    return subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "-b", bind, "wsgi:app"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _run_one(client: httpx.Client) -> str:
    created = client.post("/api/predictions", json={"model": "relay/image-demo", "input": {
        "prompt": "where", "steps": 2, "step_delay": 0.05, "boot_delay": 0}})
    assert created.status_code == 201, created.text
    events = follow(client, created.json()["stream_url"])
    return str(events[-1].data["status"])


@pytest.mark.parametrize("kind", ["unix", "tcp"])
def test_a_forged_first_host_does_not_pick_the_upstream(
        kind: str, tmp_path: Path, decoy: tuple[str, list[str]]) -> None:
    decoy_host, decoy_seen = decoy
    if kind == "unix":
        path = str(tmp_path / "relay.sock")
        process = _gunicorn(f"unix:{path}", tmp_path)
        wait_until(lambda: os.path.exists(path), timeout=30)
        transport = httpx.HTTPTransport(uds=path)
        base = "http://relay.local"
    else:
        from testbed import free_port

        port = free_port()
        process = _gunicorn(f"127.0.0.1:{port}", tmp_path)
        transport = httpx.HTTPTransport()
        base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, transport=transport, timeout=10) as client:
            def up() -> bool:
                assert process.poll() is None, "gunicorn exited"
                try:
                    # The very first request names the decoy's address as its Host.
                    return client.get("/api/models", headers={"Host": decoy_host}).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_until(up, timeout=30)
            assert _run_one(client) == "succeeded"
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(20)
    assert decoy_seen == []
