"""The spend guard's state in the run records' database (no REDIS_URL), in one process.

- create_app puts the guard on the database store when there is no Redis;
- the counts survive a new app on the same instance folder (as a second worker, or a
  restart, sees them), so two apps on one SQLite file share one budget;
- a database that fails under the guard answers 503 hub_unavailable, never a 500, and
  nothing is created upstream.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from relay import create_app
from relay.guard.sql_store import SqlStore
from testbed import EmulatorServer


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    made = EmulatorServer(tmp_path_factory.mktemp("emulator")).start(timeout=60)
    yield made
    made.stop()


@pytest.fixture
def make_app(tmp_path: Path, emulator: EmulatorServer) -> Iterator[Any]:
    apps: list[Flask] = []

    def make(**env: Any) -> Flask:
        config = {"INSTANCE_PATH": str(tmp_path / "shared"), "SECRET_KEY": "guard-db-test-secret-0123456789",
                  "REPLICATE_BASE_URL": emulator.url, "RELAY_RATE_LIMIT": "100000/minute", **env}
        app = create_app(config)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["relay"].shutdown()


def create(app: Flask) -> Any:
    body = {"model": "relay/image-demo", "input": {"prompt": "a lighthouse"}}
    return app.test_client().post("/api/predictions", json=body)


def test_two_apps_on_one_instance_folder_share_one_budget(make_app: Any, emulator: EmulatorServer) -> None:
    first, second = make_app(RELAY_BUDGET="3/hour"), make_app(RELAY_BUDGET="3/hour")
    assert isinstance(first.extensions["relay"].guard.store, SqlStore)
    before = emulator.creates()
    answers = [create(app).status_code for app in (first, second, first, second, first)]
    assert answers == [201, 201, 201, 429, 429]
    assert emulator.creates() - before == 3
    assert create(second).json["code"] == "budget_exhausted"


def test_a_failing_database_answers_503_and_creates_nothing(make_app: Any, emulator: EmulatorServer) -> None:
    app = make_app(RELAY_BUDGET="3/hour")
    store = app.extensions["relay"].guard.store
    assert isinstance(store, SqlStore)
    with store.engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE guard_values"))
    before = emulator.creates()
    answer = create(app)
    assert answer.status_code == 503
    assert answer.json["code"] == "hub_unavailable" and answer.json["success"] is False
    assert "Retry-After" in answer.headers
    assert emulator.creates() == before
