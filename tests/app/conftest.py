"""The in-process tier: the app built in this process, called through `httpx.WSGITransport`."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import httpx
import pytest
from flask import Flask

from testbed.inprocess import in_process_app, in_process_client


@pytest.fixture(scope="session")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """One app with the test settings, shared by the tier (as `relay_server` is by the system tests)."""
    built = in_process_app(tmp_path_factory.mktemp("app"))
    yield built
    built.extensions["relay"].shutdown()


@pytest.fixture
def client(app: Flask) -> Iterator[httpx.Client]:
    with in_process_client(app) as made:
        yield made


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[Callable[..., httpx.Client]]:
    """Clients of apps with their own settings, for tests of a setting."""
    clients: list[tuple[Flask, httpx.Client]] = []

    def make(settings: Mapping[str, str] | None = None, **kwargs: object) -> httpx.Client:
        app = in_process_app(tmp_path / f"app{len(clients)}", settings)
        made = in_process_client(app, **kwargs)
        clients.append((app, made))
        return made

    yield make
    for app, made in clients:
        made.close()
        app.extensions["relay"].shutdown()
