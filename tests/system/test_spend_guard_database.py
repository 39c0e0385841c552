"""The spend guard across gunicorn workers without Redis: its state lives in the run records' database.

RELAY_BUDGET=5/hour, 12 simultaneous creates over 3 workers sharing the SQLite file in the
instance folder (and, second, a real PostgreSQL as DATABASE_URL) -> exactly 5 reach the emulator,
the other 7 get 429 budget_exhausted with Retry-After. Simultaneous repeats of one Idempotency-Key
on those workers create once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from testbed import EmulatorServer, RelayServer

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    made = EmulatorServer(tmp_path_factory.mktemp("emulator")).start(timeout=60)
    yield made
    made.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_env(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "sqlite":
        return {}  # the default: relay.db in the instance folder every worker shares
    return {"DATABASE_URL": request.getfixturevalue("postgres_url")}


def start(start_server: Any, emulator: EmulatorServer, database_env: dict[str, str], **env: str) -> RelayServer:
    server: RelayServer = start_server({"REPLICATE_BASE_URL": emulator.url, **database_env, **env},
                                       workers=3, start_timeout=120)
    assert server.env is not None and "REDIS_URL" not in server.env
    return server


def post(server: RelayServer, **kwargs: Any) -> httpx.Response:
    body = {"model": "relay/image-demo", "input": {"prompt": "a lighthouse"}}
    return httpx.post(server.url + "/api/predictions", json=body, timeout=60, **kwargs)


def test_budget_of_five_holds_exactly_over_three_workers_without_redis(
        start_server: Any, emulator: EmulatorServer, database_env: dict[str, str]) -> None:
    server = start(start_server, emulator, database_env, RELAY_BUDGET="5/hour")
    before = emulator.creates()
    barrier = threading.Barrier(12)

    def one(_: int) -> httpx.Response:
        barrier.wait()
        return post(server)

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(one, range(12)))
    created = [a for a in answers if a.status_code == 201]
    refused = [a for a in answers if a.status_code != 201]
    assert len(created) == 5 and len(refused) == 7, [a.status_code for a in answers]
    assert {(a.status_code, a.json()["code"]) for a in refused} == {(429, "budget_exhausted")}
    assert all(1 <= int(a.headers["Retry-After"]) <= 3600 for a in refused)
    assert emulator.creates() - before == 5
    health = httpx.get(server.url + "/healthz", timeout=10).json()
    assert health["guard"]["creations"]["remaining"] == 0


def test_simultaneous_repeats_of_one_key_create_once_without_redis(
        start_server: Any, emulator: EmulatorServer, database_env: dict[str, str]) -> None:
    server = start(start_server, emulator, database_env, RELAY_BUDGET="2/hour")
    with httpx.Client(base_url=server.url) as first:
        first.get("/")  # a page: one visitor (its cookie) for every repeat
        cookies = dict(first.cookies)
    before = emulator.creates()
    barrier = threading.Barrier(6)

    def one(_: int) -> httpx.Response:
        barrier.wait()
        return post(server, cookies=cookies, headers={"Idempotency-Key": "one-key"})

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(one, range(6)))
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1
    assert emulator.creates() - before == 1
    assert post(server).status_code == 201  # the repeats took nothing from the budget
    assert post(server).json()["code"] == "budget_exhausted"
