"""The load clients as processes: `python -m bench.load.clients <mode>`, run to the end or driven a line at a time.

Clients run in processes of their own (gevent, thousands of sockets each), so the
benchmark's own process stays free to measure the server.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from testbed import ROOT

CLIENTS = [sys.executable, "-m", "bench.load.clients"]


def run_client(*args: str, timeout: float) -> dict[str, Any]:
    """Run `python -m bench.load.clients <args>` to completion and return the JSON it prints last."""
    done = subprocess.run([*CLIENTS, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout + 30,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"client {args[0]} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


class ClientProcess:
    """A `python -m bench.load.clients <mode>` process (or another `module`'s) that takes one command a
    line and answers one JSON a line."""

    def __init__(self, *args: str, module: str = "bench.load.clients") -> None:
        self.process = subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)

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


class IdleClients(ClientProcess):
    """A `clients idle` (or `fanout`) process: opens streams on command and holds them."""

    def __init__(self, url: str, mode: str = "idle") -> None:
        super().__init__(mode, "--url", url)

    def open(self, count: int, concurrency: int = 100, wait: bool = True) -> dict[str, Any]:
        return self.command(f"open {count} {concurrency}" + ("" if wait else " nowait"))


class BurstClients(ClientProcess):
    """A `python -m bench.load.burst` process: opens many streams at the same moment, on command."""

    def __init__(self, url: str) -> None:
        super().__init__("--url", url, module="bench.load.burst")

    def burst(self, count: int) -> dict[str, Any]:
        return self.command(f"burst {count}")

    def hang_up(self) -> None:
        self.command("hangup")

    def follow(self, url: str) -> None:
        """Later bursts open `url`."""
        self.command(f"follow {url}")
