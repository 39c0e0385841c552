"""Servers for the benchmarks: Relay or a baseline app under gunicorn's gevent worker.

Nothing here is measured; it starts and stops every server the same way, so
that a baseline and Relay differ only in the code they serve.
"""

from __future__ import annotations

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

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SECRET = "bench-secret-key-0123456789abcdefghijklmnop"

# Open files we ask for, for gunicorn and for the client processes (the hard limit caps it).
WANTED_FILES = 16384


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
                 health_path: str = "/healthz", config: Path = ROOT / "gunicorn.conf.py") -> None:
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
            **env,
        }
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
