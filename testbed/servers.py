"""The servers: Relay (or a baseline app) under gunicorn, uvicorn, the standalone emulator, redis-server.

`Gunicorn` is any WSGI app under gunicorn's gevent worker with Relay's
gunicorn.conf.py; `RelayServer` is Relay under it with the test settings (the
embedded emulator, fault injection, fast polling, no token, state in a folder of
its own so a restart on the same port finds it again). The benchmarks use
`Gunicorn` with their own settings, so a baseline and Relay differ only in the
code they serve.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import sys
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import httpx
import psutil

from testbed.process import ROOT, ServerProcess

TEST_SECRET = "test-secret-key-for-relay-0123456789"
_POST_CREATE = re.compile(r'"POST /api/predictions(?:\?| )')


class Gunicorn(ServerProcess):
    """`gunicorn -c <config> -w <workers> <app>` on 127.0.0.1 (the config picks the gevent worker)."""

    name = "gunicorn"

    def __init__(self, app: str, env: Mapping[str, str], *, workers: int = 1, port: int | None = None,
                 config: Path = ROOT / "gunicorn.conf.py", args: Sequence[str] = (),
                 health_path: str = "/healthz", open_files: int | None = None,
                 log_file: Path | None = None) -> None:
        self.workers = workers
        command = [sys.executable, "-m", "gunicorn", "-k", "gevent", "-c", str(config), "-b", "127.0.0.1:{port}",
                   "-w", str(workers), *args, app]
        super().__init__(command, port=port, env=env, health_path=health_path, open_files=open_files,
                         log_file=log_file)

    def worker(self) -> psutil.Process:
        """The one worker process (the arbiter's child)."""
        assert self.process is not None
        children = psutil.Process(self.process.pid).children()
        if len(children) != 1:
            raise RuntimeError(f"expected one gunicorn worker, found {len(children)}")
        return children[0]


class RelayServer(Gunicorn):
    """Relay (`wsgi:app`) with the test settings, its state under `tmp`; `env` on top of them."""

    def __init__(self, env: Mapping[str, str], tmp: Path, workers: int = 1, port: int | None = None,
                 args: Sequence[str] = (), start_timeout: float = 90.0) -> None:
        self.start_timeout = start_timeout  # generous: a loaded CI box can take a minute to import
        self.tmp = tmp
        settings = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "SECRET_KEY": TEST_SECRET,
            "RELAY_INSTANCE_PATH": str(tmp / "instance"),
            "RELAY_EMULATOR_DIR": str(tmp / "emulator"),
            "RELAY_EMULATOR_FAULTS": "1",
            "RELAY_POLL_INTERVAL": "0.1",
            "RELAY_HEARTBEAT_INTERVAL": "1",
            "RELAY_LOG_LEVEL": "INFO",
            # Tests create predictions back to back from one address; the abuse tests set the limit they test.
            "RELAY_RATE_LIMIT": "100000/minute",
            "RELAY_CANCEL_RATE_LIMIT": "100000/minute",
        }
        settings.pop("REPLICATE_API_TOKEN", None)  # never the machine's own: a test sets one in `env`
        super().__init__("wsgi:app", {**settings, **env}, workers=workers, port=port, args=args)

    def start(self, timeout: float | None = None) -> Self:
        return super().start(self.start_timeout if timeout is None else timeout)


class Uvicorn(ServerProcess):
    """`uvicorn <app>` in one process: the ASGI baseline. `worker()` is that process, which serves everything."""

    name = "uvicorn"

    def __init__(self, app: str, env: Mapping[str, str], *, health_path: str = "/healthz",
                 open_files: int | None = None, log_file: Path | None = None) -> None:
        command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", "{port}",
                   "--log-level", "warning", "--no-access-log", "--backlog", "4096"]
        super().__init__(command, env={**os.environ, "PYTHONUNBUFFERED": "1", **env}, health_path=health_path,
                         open_files=open_files, log_file=log_file)

    def worker(self) -> psutil.Process:
        assert self.process is not None
        return psutil.Process(self.process.pid)


class FlaskDevServer(ServerProcess):
    """`flask --app app run`: werkzeug's development server, as the README's first command starts it."""

    name = "flask run"

    def __init__(self, env: Mapping[str, str]) -> None:
        inherited = {k: v for k, v in os.environ.items() if k != "REPLICATE_API_TOKEN"}
        super().__init__([sys.executable, "-m", "flask", "--app", "app", "run", "--port", "{port}"],
                         env={**inherited, "PYTHONUNBUFFERED": "1", **env})


class EmulatorServer(ServerProcess):
    """`python -m relay.emulator --faults` on its own port: an upstream outside Relay, as Replicate is."""

    name = "the emulator"

    def __init__(self, state_dir: Path) -> None:
        super().__init__([sys.executable, "-m", "relay.emulator", "--port", "{port}", "--faults",
                          "--state-dir", str(state_dir)], health_path="/_emulator/stats")

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = httpx.get(self.url + "/_emulator/stats", timeout=30).json()
        return stats

    def gets(self, prediction_id: str) -> int:
        """GETs the emulator counted for one prediction."""
        return int(self.stats().get("per_prediction", {}).get(prediction_id, {}).get("GET", 0))

    def fault(self, **fault: Any) -> None:
        answer = httpx.post(self.url + "/_emulator/faults", json=fault)
        answer.raise_for_status()

    def clear_faults(self) -> None:
        httpx.delete(self.url + "/_emulator/faults").raise_for_status()

    # What reached "Replicate" (the spend-guard tests count it).
    def creates(self) -> int:
        """Predictions created so far (every create route)."""
        return sum(int(n) for route, n in self.stats().items()
                   if route.startswith("POST ") and route.endswith("/predictions"))

    def predictions(self) -> list[dict[str, Any]]:
        answer = httpx.get(self.url + "/v1/predictions", headers=_EMULATOR_AUTH, timeout=5).json()
        return list(answer["results"])

    def prediction(self, prediction_id: str) -> dict[str, Any]:
        answer = httpx.get(f"{self.url}/v1/predictions/{prediction_id}", headers=_EMULATOR_AUTH, timeout=5)
        return dict(answer.json())

    def unfinished(self, ignoring: Collection[str] = ()) -> int:
        """Predictions starting or processing, but for the ids in `ignoring` (an earlier test's)."""
        return sum(1 for p in self.predictions()
                   if p["status"] in ("starting", "processing") and p["id"] not in ignoring)


_EMULATOR_AUTH = {"Authorization": "Bearer test"}  # the standalone emulator takes any token


def redis_binary() -> str | None:
    return shutil.which("redis-server")


class RedisServer(ServerProcess):
    """A private redis-server on a free port: no persistence; restartable on the same port."""

    name = "redis-server"

    def __init__(self, tmp: Path, max_clients: int = 10000, open_files: int | None = None) -> None:
        binary = redis_binary()
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        tmp.mkdir(parents=True, exist_ok=True)
        super().__init__([binary, "--port", "{port}", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                          "--dir", str(tmp), "--maxclients", str(max_clients), "--loglevel", "warning"],
                         open_files=open_files)
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False


class SiteServer(RelayServer):
    """Relay for the browser tests: never on Redis, a short graceful timeout, the access log counted.

    Restartable: `kill()` it mid-stream, `start()` it again on the same port with the same state.
    """

    def __init__(self, state_dir: Path, port: int | None = None) -> None:
        super().__init__({"RELAY_POLL_INTERVAL": "0.2", "RELAY_RATE_LIMIT": "1000/minute"}, state_dir, port=port,
                         args=["--graceful-timeout", "2"])
        assert self.env is not None
        self.env.pop("REDIS_URL", None)

    def create_posts(self) -> int:
        """How many `POST /api/predictions` requests the access log shows, over every run."""
        return sum(1 for line in self.output if _POST_CREATE.search(line))
