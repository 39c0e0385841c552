"""Every answer names its request id, and every log line the request causes carries it."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import httpx
import pytest

CREATE = {"model": "relay/image-demo", "input": {"prompt": "ids", "boot_delay": 0}}
FRESH = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture
def relay_log() -> Iterator[io.StringIO]:
    """What Relay's own log handler writes, at INFO, for the length of a test."""
    logger = logging.getLogger("relay")
    handler = next(h for h in logger.handlers if getattr(h, "_relay", False))
    assert isinstance(handler, logging.StreamHandler)
    captured = io.StringIO()
    previous, level = handler.setStream(captured), logger.level
    logger.setLevel(logging.INFO)
    yield captured
    handler.setStream(previous)
    logger.setLevel(level)


def test_a_router_id_is_echoed_and_logged(client: httpx.Client, relay_log: io.StringIO) -> None:
    created = client.post("/api/predictions", json=CREATE, headers={"X-Request-ID": "router-7f3a.b_c-1"})
    assert created.status_code == 201
    assert created.headers["X-Request-ID"] == "router-7f3a.b_c-1"
    lines = [line for line in relay_log.getvalue().splitlines() if created.json()["id"] in line]
    assert lines and all("[router-7f3a.b_c-1]" in line for line in lines)


@pytest.mark.parametrize("given", [None, "", "has space", "x" * 101, "semi;colon", "tab\tinside"])
def test_a_missing_or_unusable_id_is_replaced_by_a_fresh_one(client: httpx.Client, given: str | None) -> None:
    headers = {} if given is None else {"X-Request-ID": given}
    answers = [client.get("/api/models", headers=headers) for _ in range(2)]
    ids = [answer.headers["X-Request-ID"] for answer in answers]
    assert all(FRESH.match(value) for value in ids) and ids[0] != ids[1]
    assert all(len(answer.headers.get_list("X-Request-ID")) == 1 for answer in answers)


def test_streams_and_errors_carry_it_too(client: httpx.Client) -> None:
    created = client.post("/api/predictions", json=CREATE).json()
    with client.stream("GET", created["stream_url"], headers={"X-Request-ID": "s-1"}) as stream:
        assert stream.headers["X-Request-ID"] == "s-1"
    refused = client.get(f"/api/predictions/{created['id']}/events?token=forged", headers={"X-Request-ID": "e-1"})
    assert refused.status_code == 403 and refused.headers["X-Request-ID"] == "e-1"
