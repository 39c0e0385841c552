"""One server subprocess on 127.0.0.1: started, polled until it answers, its output kept, stopped.

Every server the tests and benchmarks start (gunicorn, uvicorn, the standalone
emulator, redis-server, `flask run`) is a `ServerProcess` with its own command
and its own idea of "answers". Each runs in a session of its own, so `kill()`
can SIGKILL a gunicorn arbiter and its workers together, as a crash would.
The output goes to a thread that keeps it in memory (`log()`): a pipe nobody
reads would block a chatty server. Benchmarks pass `log_file` instead, so no
thread of theirs spends CPU on a log while they measure.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Self

import httpx

from testbed.waiting import free_port, port_closed, wait_until

ROOT = Path(__file__).resolve().parent.parent


def raise_file_limit(wanted: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards `wanted` (children inherit it); the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class ServerProcess:
    """`command` in a subprocess, serving on `port`; restartable (same port, same command)."""

    name = "server"

    def __init__(self, command: Sequence[str], *, port: int | None = None, env: Mapping[str, str] | None = None,
                 health_path: str = "/healthz", open_files: int | None = None,
                 log_file: Path | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [part.replace("{port}", str(self.port)) for part in command]
        self.env = dict(env) if env is not None else None
        self.health_path = health_path
        self.open_files = open_files
        self.log_file = log_file
        self.output: list[str] = []  # every run's, in order
        self.process: subprocess.Popen[str] | None = None
        self._drainer: threading.Thread | None = None

    def answers(self) -> bool:
        """True once the server serves: by default `GET health_path` is a 200."""
        try:
            return httpx.get(self.url + self.health_path, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self, timeout: float = 30) -> Self:
        if self.open_files:
            raise_file_limit(self.open_files)  # inherited: gunicorn and redis size themselves to it
        if self.log_file is not None:
            with self.log_file.open("ab") as log:
                self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=log,
                                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        else:
            self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, text=True, errors="replace",
                                            start_new_session=True)
            self._drainer = threading.Thread(target=self._drain, args=(self.process,), daemon=True)
            self._drainer.start()
        try:
            wait_until(self._ready, timeout=timeout, interval=0.05, what=f"{self.name} at {self.url}")
        except BaseException:
            self.stop(signal.SIGKILL)
            raise
        return self

    def _drain(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.output.append(line)

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited:\n{self.log()[-4000:]}")
        return self.answers()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        """Send `sig` and wait for the exit (SIGKILL to the whole session after `timeout` s)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill_session()
        self._reap()

    def kill(self) -> None:
        """SIGKILL the process and every child at once (no graceful end), then wait for the port to close."""
        if self.process is None:
            return
        self._kill_session()
        self._reap()
        wait_until(lambda: port_closed(self.port), timeout=10, what=f"port {self.port} to close")

    def _kill_session(self) -> None:
        assert self.process is not None
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(10)

    def _reap(self) -> None:
        """After the exit: keep the rest of the output, close the pipe."""
        assert self.process is not None
        if self._drainer is not None:
            self._drainer.join(10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None

    def log(self) -> str:
        if self.log_file is not None:
            return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        return "".join(self.output)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
