"""Servers for the benchmarks: Relay or a baseline app under gunicorn's gevent worker.

Nothing here is measured; it starts and stops every server the same way, so
that a baseline and Relay differ only in the code they serve.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SECRET = "bench-secret-key-0123456789abcdefghijklmnop"


def emulator_token() -> str:
    """The bearer token the embedded emulator of a server with SECRET_KEY=SECRET accepts."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from relay.emulator.auth import token_from_secret

    return token_from_secret(SECRET)

# Open files we ask for, for gunicorn and for the client processes (the hard limit caps it:
# 20,000 on the benchmark machine, which is what bounds streams per process).
WANTED_FILES = 65536


def raise_file_limit(wanted: int = WANTED_FILES) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards `wanted`; the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Gunicorn:
    """`gunicorn -k gevent -w 1 -c gunicorn.conf.py <app>` on 127.0.0.1, output to a log file."""

    def __init__(self, app: str, env: Mapping[str, str], *, workers: int = 1,
                 health_path: str = "/healthz", config: Path = ROOT / "gunicorn.conf.py",
                 public_url_to_self: bool = False) -> None:
        self.app = app
        self.config = config
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tmp = Path(tempfile.mkdtemp(prefix="relay-bench-"))
        self.log_path = self.tmp / "gunicorn.log"
        self.health_path = health_path
        self.workers = workers
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "REPLICATE_"))},
            "PYTHONUNBUFFERED": "1",
            "SECRET_KEY": SECRET,
            "RELAY_INSTANCE_PATH": str(self.tmp / "instance"),
            # Room for thousands of streams in one worker (gunicorn.conf.py reads it).
            "RELAY_WORKER_CONNECTIONS": str(WANTED_FILES),
            **env,
        }
        if public_url_to_self:
            # Webhook mode: the emulator delivers to this very server, as tests/test_webhooks.py does.
            self.env["RELAY_PUBLIC_URL"] = self.url
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> Gunicorn:
        raise_file_limit()  # inherited by gunicorn and its worker
        command = [PYTHON, "-m", "gunicorn", "-k", "gevent", "-w", str(self.workers),
                   "-c", str(self.config), "-b", f"127.0.0.1:{self.port}", self.app]
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log()}")
            try:
                if httpx.get(self.url + self.health_path, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer within {timeout} s:\n{self.log()}")

    def worker(self) -> psutil.Process:
        """The one worker process (the gunicorn master's child)."""
        assert self.process is not None
        children = psutil.Process(self.process.pid).children()
        if len(children) != 1:
            raise RuntimeError(f"expected one gunicorn worker, found {len(children)}")
        return children[0]

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 30) -> None:
        if self.process is not None and self.process.poll() is None:
            # Quick shutdown: measurements are over, and idle streams would hold a graceful one
            # for the whole graceful_timeout.
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> Gunicorn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def relay_env(**extra: str) -> dict[str, str]:
    """Relay's settings for benchmarks: embedded emulator, no token, quiet logs, no per-client caps.

    All simulated browsers come from 127.0.0.1, so the per-address limits are raised out of
    the way; RELAY_TRUSTED_PROXIES keeps its default (0), so no proxy middleware is added.
    """
    return {
        "RELAY_EMULATOR_FAULTS": "1",  # turns on the emulator's request counts
        "RELAY_LOG_LEVEL": "WARNING",
        "RELAY_RATE_LIMIT": "100000/minute",  # the benchmark creates predictions back to back
        "RELAY_MAX_STREAMS_PER_CLIENT": "100000",
        **extra,
    }


class StandaloneEmulator:
    """`python -m relay.emulator` on its own port: an upstream outside Relay's worker, as Replicate is."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tmp = Path(tempfile.mkdtemp(prefix="relay-bench-emulator-"))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> StandaloneEmulator:
        log = (self.tmp / "emulator.log").open("wb")
        self.process = subprocess.Popen(
            [PYTHON, "-m", "relay.emulator", "--port", str(self.port), "--faults",
             "--state-dir", str(self.tmp / "state")],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("the emulator exited: " + (self.tmp / "emulator.log").read_text())
            try:
                httpx.get(self.url + "/v1/models", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the emulator did not answer within {timeout} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> StandaloneEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Uvicorn:
    """`uvicorn <app>` in one process on 127.0.0.1: the ASGI baseline of bench/alternatives.py.

    Same interface as `Gunicorn` where the benchmarks use it (url, worker(), log(), stop()).
    `worker()` is the uvicorn process itself, which serves every connection.
    """

    def __init__(self, app: str, env: Mapping[str, str], *, health_path: str = "/healthz") -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tmp = Path(tempfile.mkdtemp(prefix="relay-bench-uvicorn-"))
        self.log_path = self.tmp / "uvicorn.log"
        self.health_path = health_path
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> Uvicorn:
        raise_file_limit()
        command = [PYTHON, "-m", "uvicorn", self.app, "--host", "127.0.0.1", "--port", str(self.port),
                   "--log-level", "warning", "--no-access-log", "--backlog", "4096"]
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"uvicorn exited:\n{self.log()}")
            try:
                if httpx.get(self.url + self.health_path, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"uvicorn did not answer within {timeout} s:\n{self.log()}")

    def worker(self) -> psutil.Process:
        assert self.process is not None
        return psutil.Process(self.process.pid)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 30) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # nothing to drain: measurements are over
            self.process.wait(timeout)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> Uvicorn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RedisServer:
    """A private `redis-server` on a free 127.0.0.1 port: no persistence, room for many clients."""

    def __init__(self, max_clients: int = 19000) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.tmp = Path(tempfile.mkdtemp(prefix="relay-bench-redis-"))
        self.max_clients = max_clients
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15) -> RedisServer:
        raise_file_limit()  # redis-server sizes maxclients to the open-file limit it inherits
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        command = [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                   "--appendonly", "no", "--dir", str(self.tmp), "--maxclients", str(self.max_clients),
                   "--loglevel", "warning"]
        log = (self.tmp / "redis.log").open("wb")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("redis-server exited: " + (self.tmp / "redis.log").read_text())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"redis-server did not answer within {timeout} s")

    def memory(self) -> psutil.Process:
        assert self.process is not None
        return psutil.Process(self.process.pid)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_client(*args: str, timeout: float) -> dict[str, Any]:
    """Run `bench/clients.py <args>` to completion and return the JSON it prints last."""
    command = [PYTHON, str(ROOT / "bench" / "clients.py"), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout + 30, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"client {args[0]} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


class ClientProcess:
    """A `bench/clients.py <mode>` process that takes one command a line and answers one JSON a line."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen([PYTHON, str(ROOT / "bench" / "clients.py"), *args],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError("the client process ended unexpectedly")
        result: dict[str, Any] = json.loads(answer)
        return result

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def command(self, line: str) -> dict[str, Any]:
        self.send(line)
        return self.read()

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.command("close")
                self.process.wait(30)
            except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait(5)

    def __enter__(self) -> ClientProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def emulator_stats(server_url: str) -> dict[str, Any]:
    """The embedded emulator's request counts (RELAY_EMULATOR_FAULTS=1)."""
    stats: dict[str, Any] = httpx.get(server_url + "/emulator/_emulator/stats", timeout=30).json()
    return stats


def upstream_gets(server_url: str, prediction_id: str) -> int:
    """GETs the emulator counted for one prediction (from any process)."""
    return int(emulator_stats(server_url)["per_prediction"].get(prediction_id, {}).get("GET", 0))
