"""Relay's test bed: the processes and clients that `tests/` and `bench/` share.

- `waiting`: `wait_until` (poll a condition with a deadline), `free_port`, `port_closed`.
- `process`: `ServerProcess`, one server subprocess (start, answers, stop, kill, log).
- `servers`: `Gunicorn`, `RelayServer` (Relay with the test settings), `SiteServer` (the browser
  tests'), `Uvicorn`, `FlaskDevServer`, `EmulatorServer` (the standalone emulator), `RedisServer`.
- `inprocess`: Relay built in-process, its emulator reached through `httpx.WSGITransport`.
- `sse`: an independent SSE reader (httpx-sse) for Relay's streams.
"""

from testbed.process import ROOT, ServerProcess, raise_file_limit
from testbed.servers import (
    TEST_SECRET,
    EmulatorServer,
    FlaskDevServer,
    Gunicorn,
    RedisServer,
    RelayServer,
    SiteServer,
    Uvicorn,
    redis_binary,
)
from testbed.waiting import free_port, port_closed, wait_until

__all__ = [
    "ROOT", "TEST_SECRET", "EmulatorServer", "FlaskDevServer", "Gunicorn", "RedisServer", "RelayServer",
    "ServerProcess", "SiteServer", "Uvicorn", "free_port", "port_closed", "raise_file_limit", "redis_binary",
    "wait_until",
]
