"""Each allowed model's inputs and outputs, read from its version's OpenAPI schema.

Replicate publishes, per model version, the `openapi_schema` Cog generated: an
`Input` object schema (choices arrive as `allOf: [{"$ref": …}]` pointing at an
enum schema) and an `Output` schema. `ModelSchemas` fetches it through the
`replicate` client (`models.get`, and `versions.get` for a pinned version), keeps
it in memory per process and, with Redis, in one shared key per model so every
worker agrees. A cached entry older than `REFRESH_SECONDS` is checked again with
`models.get`, so a new version is picked up within that time; a pinned version
never changes, so it is fetched once.

A model whose schema cannot be fetched stays usable: it is described with a plain
prompt (no schema validation, pins still apply), a warning goes to the log, and the
fetch is tried again after `RETRY_SECONDS`.

What a schema means for the page and for validation is in `model_schema.py`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import redis
from replicate.client import Client
from replicate.exceptions import ReplicateError
from replicate.version import Versions

from .config import AllowedModel
from .errors import RelayError
from .model_schema import ModelInfo, ModelSchema, describe, schema_from_model_json
from .upstream import Upstream

__all__ = ["ModelInfo", "ModelSchema", "ModelSchemas"]

log = logging.getLogger(__name__)

REFRESH_SECONDS = 300.0
RETRY_SECONDS = 30.0
_REDIS_KEY = "relay:model-schema:{}"

# -- fetching and caching ---------------------------------------------------------------
@dataclass(slots=True)
class _Entry:
    schema: ModelSchema
    checked: float  # time.monotonic() of the last fetch or check


class ModelSchemas:
    """The schema of every allowed model, fetched on first use and kept fresh."""

    def __init__(self, upstream: Upstream, redis_client: redis.Redis | None = None, *,
                 refresh: float = REFRESH_SECONDS, retry: float = RETRY_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._upstream = upstream
        self._clock = clock
        self._redis = redis_client
        self._refresh = refresh
        self._retry = retry
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def get(self, entry: AllowedModel) -> ModelSchema:
        """The schema for an allow-list entry (its pinned version, else the latest)."""
        key = f"{entry.name}:{entry.version}" if entry.version else entry.name
        now = self._clock()
        with self._lock:
            held = self._entries.get(key)
        if held is not None:
            fresh_for = self._refresh if held.schema.known else self._retry
            if entry.version is not None and held.schema.known:
                return held.schema  # a version never changes
            if now - held.checked < fresh_for:
                return held.schema
        schema = self._shared(key) or self._fetch(entry)
        if schema is None:
            schema = held.schema if held is not None and held.schema.known else ModelSchema.unknown(entry.name)
        with self._lock:
            self._entries[key] = _Entry(schema, now)
        return schema

    def _shared(self, key: str) -> ModelSchema | None:
        """What another process fetched within the refresh period, from Redis."""
        if self._redis is None:
            return None
        try:
            raw = self._redis.get(_REDIS_KEY.format(key))
            return ModelSchema.from_json(raw) if isinstance(raw, (bytes, str)) else None
        except (redis.RedisError, OSError, ValueError, KeyError) as error:
            log.debug("model schema cache read failed: %s", error)
            return None

    def _share(self, key: str, schema: ModelSchema, pinned: bool) -> None:
        if self._redis is None:
            return
        try:
            ttl = None if pinned else max(1, int(self._refresh))
            self._redis.set(_REDIS_KEY.format(key), schema.as_json(), ex=ttl)
        except (redis.RedisError, OSError) as error:
            log.debug("model schema cache write failed: %s", error)

    def _fetch(self, entry: AllowedModel) -> ModelSchema | None:
        try:
            client = self._upstream.client
            model = _model_json(client, entry.name)
            version = model.get("latest_version")
            if entry.version is not None and (not isinstance(version, dict) or version.get("id") != entry.version):
                version = dict(Versions(client, entry.name).get(entry.version).dict())
            if not isinstance(version, dict) or not isinstance(version.get("openapi_schema"), dict):
                raise ValueError("the model has no version with a schema")
            example = model.get("default_example")
            schema = schema_from_model_json(entry.name, version["openapi_schema"], version=version.get("id"),
                                            description=model.get("description"),
                                            example=example if isinstance(example, dict) else None)
        except (ReplicateError, httpx.HTTPError, RelayError, ValueError, KeyError, TypeError,
                AttributeError) as error:
            log.warning("could not read the schema of %s (%s: %s); offering a plain prompt for it",
                        entry.name, type(error).__name__, error)
            return None
        key = f"{entry.name}:{entry.version}" if entry.version else entry.name
        self._share(key, schema, pinned=entry.version is not None)
        return schema

    def describe_all(self, models: tuple[AllowedModel, ...]) -> list[ModelInfo]:
        """One entry per allowed model name (the first entry for a name decides pins and edits)."""
        seen: dict[str, ModelInfo] = {}
        for entry in models:
            if entry.name not in seen:
                seen[entry.name] = describe(entry, self.get(entry))
        return list(seen.values())


def _model_json(client: Client, name: str) -> dict[str, Any]:
    """`models.get` as JSON. The client's own model of a model is strict about `default_example`
    (older examples lack fields it requires), so when it cannot parse the answer, the same
    request is read as plain JSON instead of losing the schema over an example."""
    try:
        return dict(client.models.get(name).dict())
    except ValueError:  # pydantic's ValidationError
        owner, _, model = name.partition("/")
        data = client._request("GET", f"/v1/models/{owner}/{model}").json()  # private: see the docstring
        if not isinstance(data, dict):
            raise ValueError("the model answer is not a JSON object") from None
        return data
