"""The servers of a benchmark run, from testbed: Relay or a baseline under gunicorn, uvicorn, Redis, the emulator.

Nothing here is measured. Every server starts and stops the same way, so a
baseline and Relay differ only in the code they serve. Each writes its output to
a file in a temporary folder of its own (removed at stop), and starts with a
raised open-file limit, which gunicorn, uvicorn and redis-server inherit.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import psutil

from testbed import ROOT, EmulatorServer, Gunicorn, RedisServer, Uvicorn, free_port

SECRET = "bench-secret-key-0123456789abcdefghijklmnop"
# Open files we ask for, for the servers and the client processes (the hard limit caps it:
# 20,000 on the benchmark machine, which is what bounds streams per process).
WANTED_FILES = 65536
HEARTBEAT = "50"  # seconds: longer than a measurement, so idle streams stay silent


def _scratch(kind: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"relay-bench-{kind}-"))


class BenchGunicorn(Gunicorn):
    """A WSGI app (`wsgi:app` is Relay) under gunicorn's gevent worker, without the machine's RELAY_ settings."""

    def __init__(self, app: str, env: Mapping[str, str], *, workers: int = 1, health_path: str = "/healthz",
                 config: Path = ROOT / "gunicorn.conf.py", public_url_to_self: bool = False) -> None:
        self.tmp = _scratch("gunicorn")
        port = free_port()
        settings = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "REPLICATE_"))},
            "PYTHONUNBUFFERED": "1",
            "SECRET_KEY": SECRET,
            "RELAY_INSTANCE_PATH": str(self.tmp / "instance"),
            "RELAY_WORKER_CONNECTIONS": str(WANTED_FILES),  # room for thousands of streams in one worker
            **env,
        }
        if public_url_to_self:
            # Webhook mode: the emulator delivers to this very server, as tests/system/test_webhooks.py does.
            settings["RELAY_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
        super().__init__(app, settings, workers=workers, port=port, config=config, health_path=health_path,
                         open_files=WANTED_FILES, log_file=self.tmp / "gunicorn.log")

    def stop(self, sig: int = signal.SIGQUIT, timeout: float = 30) -> None:
        # SIGQUIT: a quick shutdown. The measurements are over, and idle streams would hold a
        # graceful one for the whole graceful_timeout.
        super().stop(sig, timeout)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def log(self) -> str:
        return super().log()[-4000:]


class BenchUvicorn(Uvicorn):
    """`uvicorn <app>` in one process: the ASGI baseline of bench/alternatives.py."""

    def __init__(self, app: str, env: Mapping[str, str], *, health_path: str = "/healthz") -> None:
        self.tmp = _scratch("uvicorn")
        super().__init__(app, env, health_path=health_path, open_files=WANTED_FILES,
                         log_file=self.tmp / "uvicorn.log")

    def stop(self, sig: int = signal.SIGKILL, timeout: float = 30) -> None:
        super().stop(sig, timeout)  # nothing to drain: the measurements are over
        shutil.rmtree(self.tmp, ignore_errors=True)

    def log(self) -> str:
        return super().log()[-4000:]


class BenchRedis(RedisServer):
    """A private redis-server with room for many clients (it sizes maxclients to the open-file limit)."""

    def __init__(self, max_clients: int = 19000) -> None:
        self.tmp = _scratch("redis")
        super().__init__(self.tmp, max_clients=max_clients, open_files=WANTED_FILES)

    def memory(self) -> psutil.Process:
        """The redis-server process, for its memory."""
        assert self.process is not None
        return psutil.Process(self.process.pid)

    def stop(self, sig: int = signal.SIGKILL, timeout: float = 10) -> None:
        super().stop(sig, timeout)
        shutil.rmtree(self.tmp, ignore_errors=True)


class BenchEmulator(EmulatorServer):
    """`python -m relay.emulator` on its own port: an upstream outside Relay's worker, as Replicate is."""

    def __init__(self) -> None:
        self.tmp = _scratch("emulator")
        super().__init__(self.tmp / "state")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
        super().stop(sig, timeout)
        shutil.rmtree(self.tmp, ignore_errors=True)


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


def emulator_stats(server_url: str) -> dict[str, Any]:
    """The embedded emulator's request counts (RELAY_EMULATOR_FAULTS=1)."""
    stats: dict[str, Any] = httpx.get(server_url + "/emulator/_emulator/stats", timeout=30).json()
    return stats


def upstream_gets(server_url: str, prediction_id: str) -> int:
    """GETs the emulator counted for one prediction (from any process)."""
    return int(emulator_stats(server_url)["per_prediction"].get(prediction_id, {}).get("GET", 0))
