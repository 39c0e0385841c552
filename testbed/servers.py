"""Processes the tests and benchmarks start: Relay under gunicorn, a real redis-server."""


from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
TEST_SECRET = "test-secret-key-for-relay-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll `condition` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


class RelayServer:
    """gunicorn running `wsgi:app` in a subprocess, with its output captured."""

    def __init__(self, env: Mapping[str, str], tmp: Path, workers: int = 1, port: int | None = None,
                 start_timeout: float = 30.0) -> None:
        self.start_timeout = start_timeout
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tmp = tmp
        self.env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "SECRET_KEY": TEST_SECRET,
            "RELAY_INSTANCE_PATH": str(tmp / "instance"),
            "RELAY_EMULATOR_FAULTS": "1",
            "RELAY_POLL_INTERVAL": "0.1",
            "RELAY_HEARTBEAT_INTERVAL": "1",
            "RELAY_LOG_LEVEL": "INFO",
            # Tests create predictions back to back from one address; the abuse tests set the limit they test.
            "RELAY_RATE_LIMIT": "100000/minute",
            **env,
        }
        self.env.pop("REPLICATE_API_TOKEN", None) if "REPLICATE_API_TOKEN" not in env else None
        self.workers = workers
        self.output: list[str] = []
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> RelayServer:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{self.port}",
             "-w", str(self.workers), "wsgi:app"],
            cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()
        wait_until(self._healthy, timeout=self.start_timeout)
        return self

    def _drain(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def _healthy(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError("gunicorn exited:\n" + "".join(self.output))
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self._drainer.join(5)
        assert self.process.stdout is not None
        self.process.stdout.close()

    def log(self) -> str:
        return "".join(self.output)



class RedisServer:
    """A real redis-server on a free port, started and stopped by the tests."""

    def __init__(self, tmp: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if os.environ.get("CI") or os.environ.get("RELAY_REQUIRE_REDIS"):
                pytest.fail("redis-server is not installed (apt-get install redis-server)")
            pytest.skip("redis-server is not installed: the Redis tests need it (apt-get install redis-server)")
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.tmp = tmp
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.tmp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, timeout=10)
        return self

    def _answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_connect_timeout=0.2).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


