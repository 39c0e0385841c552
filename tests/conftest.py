"""Fixtures that run Relay for real: gunicorn with gevent workers on 127.0.0.1, and clients.

The processes themselves live in the `testbed` package, shared with `bench/`."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from testbed import RedisServer, RelayServer, redis_binary
from testbed.postgres import PostgresServer


@pytest.fixture(scope="session")
def relay_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayServer]:
    """One shared server on the embedded emulator with fault injection on."""
    server = RelayServer({}, tmp_path_factory.mktemp("relay")).start()
    yield server
    server.stop()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., RelayServer]]:
    """Start servers with their own settings; all are stopped (quickly, SIGINT) after the test."""
    servers: list[RelayServer] = []

    def start(env: Mapping[str, str] | None = None, **kwargs: Any) -> RelayServer:
        server = RelayServer(env or {}, tmp_path / f"s{len(servers)}", **kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop(signal.SIGINT)  # at once: graceful shutdown has its own test


@pytest.fixture
def api(relay_server: RelayServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=relay_server.url, timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """REDIS_URL from the environment, or a redis-server the tests start themselves."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    require_redis()
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server.url
    server.stop()


def require_redis() -> None:
    """Skip (or, on CI, fail) a test that needs redis-server where it is not installed."""
    if redis_binary() is None:
        if os.environ.get("CI") or os.environ.get("RELAY_REQUIRE_REDIS"):
            pytest.fail("redis-server is not installed (apt-get install redis-server)")
        pytest.skip("redis-server is not installed: the Redis tests need it (apt-get install redis-server)")


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server for one test, which it may stop and start again (same port, same URL)."""
    require_redis()
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server the tests start themselves (testbed/postgres.py)."""
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """DATABASE_URL of a fresh, empty database on that server."""
    return postgres_server.new_database()
