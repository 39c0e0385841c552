"""SIGTERM ends open streams at once, with the project's gunicorn.conf.py and without it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from testbed import ROOT, TEST_SECRET, RelayServer, free_port, wait_until
from testbed.sse import iter_events


def _bare_gunicorn(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`gunicorn -k gevent wsgi:app` run from another folder: no gunicorn.conf.py is read."""
    port = free_port()
    env = {**os.environ, "SECRET_KEY": TEST_SECRET, "RELAY_INSTANCE_PATH": str(tmp / "instance"),
           "RELAY_HEARTBEAT_INTERVAL": "1", "RELAY_POLL_INTERVAL": "0.1"}
    env.pop("REPLICATE_API_TOKEN", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-k", "gevent", "-b", f"127.0.0.1:{port}", "--chdir", str(ROOT),
         "wsgi:app"], cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert process.poll() is None, "gunicorn exited"
        try:
            return httpx.get(url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(healthy, timeout=30)
    return process, url


def _seconds_to_end_stream(url: str, process: subprocess.Popen[bytes] | subprocess.Popen[str]) -> float:
    """Open a stream on a long prediction, SIGTERM the master, return how long the stream lasted after."""
    with httpx.Client(base_url=url, timeout=30) as client:
        created = client.post("/api/predictions", json={"model": "relay/image-demo", "input": {
            "prompt": "long", "steps": 500, "step_delay": 0.5}}).json()
        ended = threading.Event()
        seen: list[str] = []

        def read() -> None:
            try:
                for event in iter_events(client, created["stream_url"], timeout=60):
                    seen.append(event.kind)
            except httpx.HTTPError:
                pass
            ended.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        wait_until(lambda: seen, timeout=10)
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert ended.wait(15), "the stream outlived SIGTERM by 15 s"
        took = time.monotonic() - sent
    process.wait(30)
    return took


def test_sigterm_ends_streams_without_the_gunicorn_config(tmp_path: Path) -> None:
    process, url = _bare_gunicorn(tmp_path)
    try:
        took = _seconds_to_end_stream(url, process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
    print(f"stream ended {took:.2f} s after SIGTERM (bare gunicorn)")
    assert took < 3.0


def test_sigterm_ends_streams_with_the_gunicorn_config(tmp_path: Path) -> None:
    server = RelayServer({}, tmp_path).start()
    try:
        assert server.process is not None
        took = _seconds_to_end_stream(server.url, server.process)
    finally:
        server.stop(signal.SIGINT)
    print(f"stream ended {took:.2f} s after SIGTERM (gunicorn.conf.py)")
    assert took < 3.0


if __name__ == "__main__":
    pytest.main([__file__, "-s", "-q"])
