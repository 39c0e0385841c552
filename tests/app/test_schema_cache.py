"""Schemas fetched through the real `replicate` client, kept per process and in Redis, refreshed."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator

import pytest
import redis

from relay.config import AllowedModel
from relay.schemas import ModelSchemas
from relay.upstream import Upstream
from testbed.recorded import RecordedReplicate

SDXL = AllowedModel("stability-ai/sdxl")
LLAMA = AllowedModel("meta/llama-2-70b-chat")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def replicate() -> Iterator[RecordedReplicate]:
    server = RecordedReplicate(["stability-ai__sdxl", "meta__llama-2-70b-chat"]).start()
    yield server
    server.stop()


def schemas_for(server: RecordedReplicate, clock: Clock, client: redis.Redis | None = None) -> ModelSchemas:
    return ModelSchemas(Upstream("r8_test", server.url), client, refresh=300, retry=30, clock=clock)


def test_fetched_once_per_process_until_the_refresh_time(replicate: RecordedReplicate) -> None:
    clock = Clock()
    schemas = schemas_for(replicate, clock)
    first = schemas.get(SDXL)
    assert first.known and first.input["properties"]["scheduler"]["enum"][0] == "DDIM"
    clock.now += 299
    assert schemas.get(SDXL) is first
    assert replicate.count("GET /v1/models/stability-ai/sdxl") == 1


def test_a_new_version_is_picked_up_after_the_refresh_time(replicate: RecordedReplicate) -> None:
    clock = Clock()
    schemas = schemas_for(replicate, clock)
    assert "new_input" not in schemas.get(SDXL).input["properties"]
    model = copy.deepcopy(replicate.models["stability-ai/sdxl"])
    model["latest_version"]["id"] = "f" * 64
    model["latest_version"]["openapi_schema"]["components"]["schemas"]["Input"]["properties"]["new_input"] = {
        "type": "integer", "title": "New Input", "x-order": 99}
    replicate.models["stability-ai/sdxl"] = model
    clock.now += 301
    fresh = schemas.get(SDXL)
    assert fresh.version == "f" * 64 and "new_input" in fresh.input["properties"]
    assert replicate.count("GET /v1/models/stability-ai/sdxl") == 2


def test_a_pinned_version_is_read_with_versions_get_and_never_refreshed(replicate: RecordedReplicate) -> None:
    clock = Clock()
    latest = replicate.models["meta/llama-2-70b-chat"]["latest_version"]["id"]
    schemas = schemas_for(replicate, clock)
    entry = AllowedModel("meta/llama-2-70b-chat", version=latest)
    assert schemas.get(entry).version == latest
    # The recorded example predates a field the client's parser requires: read again as JSON.
    fetches = replicate.count("GET /v1/models/meta/llama-2-70b-chat")
    assert fetches == 2
    clock.now += 10_000
    schemas.get(entry)
    assert replicate.count("GET /v1/models/meta/llama-2-70b-chat") == fetches


def test_a_schema_that_cannot_be_fetched_leaves_a_plain_prompt_and_a_warning(
        replicate: RecordedReplicate, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    schemas = schemas_for(replicate, clock)
    replicate.failing = True
    with caplog.at_level(logging.WARNING, logger="relay.schemas"):
        fallback = schemas.get(SDXL)
    assert not fallback.known and list(fallback.input["properties"]) == ["prompt"]
    assert any("stability-ai/sdxl" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    missing = schemas.get(AllowedModel("nobody/nothing"))
    assert not missing.known
    replicate.failing = False
    clock.now += 29
    assert not schemas.get(SDXL).known  # not retried before RETRY_SECONDS
    clock.now += 2
    assert schemas.get(SDXL).known


def test_a_refresh_failure_keeps_the_schema_already_known(replicate: RecordedReplicate) -> None:
    clock = Clock()
    schemas = schemas_for(replicate, clock)
    known = schemas.get(SDXL)
    replicate.failing = True
    clock.now += 301
    assert schemas.get(SDXL) == known


def test_with_redis_a_second_process_uses_what_the_first_fetched(replicate: RecordedReplicate,
                                                                 redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.delete("relay:model-schema:stability-ai/sdxl")
    first = schemas_for(replicate, Clock(), client).get(SDXL)
    second = schemas_for(replicate, Clock(), client).get(SDXL)
    assert second == first
    assert replicate.count("GET /v1/models/stability-ai/sdxl") == 1
    assert 0 < int(client.ttl("relay:model-schema:stability-ai/sdxl")) <= 300
