"""The hub across processes and machines, on Redis.

Redis holds each prediction's truth (keys in relay/redis_keys.py): a stream of
its events whose ids Redis issues, so ids are ordered and valid on every
process; the latest snapshot without its log (to refuse a repeat atomically,
whichever process publishes); the log once; and `done`. Publishing is one Lua
script per answer (relay/redis_scripts.py).

Each process keeps a local mirror (a `Channels`, as the memory hub uses) of the
predictions its own subscribers follow, fed by ONE pub/sub connection per
process on one channel, never one Redis connection per browser. Fan-out to
thousands of local streams then reads memory, and an event's bytes are encoded
once per process.
The mirror, its loading and its pub/sub listener are in relay/redis_mirror.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import redis

from .channels import Channels
from .events import EventKind, HubEvent, Key, Replay, Waker, encode_data, log_tail, parse_event_id
from .redis_keys import EVENTS_CHANNEL, REDIS_ERRORS, PredictionKeys, unavailable
from .redis_mirror import RedisMirror, event_from_fields, text
from .redis_scripts import PUBLISH, STATE

__all__ = ["RedisHub"]


class RedisHub:
    """Redis as the truth, a local mirror for fan-out; see the module docstring."""

    kind = "redis"

    def __init__(self, client: redis.Redis, history_size: int = 256, history_bytes: int = 2**20,
                 tail_bytes: int = 16384, memory_bytes: int = 64 * 2**20, ttl: int = 3600,
                 mirror_retention: float = 60.0) -> None:
        self.mirror = Channels(history_size=history_size, history_bytes=history_bytes, tail_bytes=tail_bytes,
                               memory_bytes=memory_bytes, retention=mirror_retention)
        self._redis = client
        self._mirrors = RedisMirror(client, self.mirror, history_size)
        self._history_size = history_size
        self._history_bytes = history_bytes
        self._tail_bytes = tail_bytes
        self._ttl = ttl
        self._publish = client.register_script(PUBLISH)
        self._state = client.register_script(STATE)
        self.closing = False
        self.streams_closed = 0

    @property
    def coalesced(self) -> int:
        return self.mirror.coalesced

    @property
    def on_coalesce(self) -> Callable[[], None] | None:
        return self.mirror.on_coalesce

    @on_coalesce.setter
    def on_coalesce(self, callback: Callable[[], None] | None) -> None:
        self.mirror.on_coalesce = callback

    # -- publishing -----------------------------------------------------------------
    def _args(self, prediction_id: str) -> list[Any]:
        return [self._history_size, self._ttl, EVENTS_CHANNEL, prediction_id, self._history_bytes]

    def publish(self, prediction_id: str, kind: EventKind, data: Mapping[str, Any]) -> HubEvent | None:
        """Publish through Redis; every process's subscribers get it from pub/sub."""
        if kind == "snapshot":
            ids = self._publish_state(prediction_id, data)
            return event_from_fields(prediction_id, ids[-1], self._snapshot_fields(data)) if ids else None
        encoded = encode_data(data)
        state = str(data.get("state", "")) if kind == "upstream" else ""
        try:
            ids = self._publish(keys=PredictionKeys.of(prediction_id).all(),
                                args=[*self._args(prediction_id), kind, encoded, state])
        except REDIS_ERRORS:
            raise unavailable() from None
        if not ids:
            return None
        key = parse_event_id(text(ids[-1]))
        assert key is not None
        return HubEvent.build(key, kind, data)

    def publish_state(self, prediction_id: str, snapshot: Mapping[str, Any]) -> bool:
        return bool(self._publish_state(prediction_id, snapshot))

    def _publish_state(self, prediction_id: str, snapshot: Mapping[str, Any]) -> list[str]:
        whole = snapshot.get("logs") or ""
        core = _core(snapshot)
        offset, tail = log_tail(whole, self._tail_bytes)
        try:
            ids = self._state(keys=PredictionKeys.of(prediction_id).all(),
                              args=[*self._args(prediction_id), encode_data(core), whole, len(whole),
                                    tail, offset])
        except REDIS_ERRORS:
            raise unavailable() from None
        return [text(i) for i in ids or []]

    @staticmethod
    def _snapshot_fields(snapshot: Mapping[str, Any]) -> dict[str, str]:
        return {"k": "snapshot", "d": encode_data(_core(snapshot)), "n": str(len(snapshot.get("logs") or ""))}

    # -- reading ---------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._mirrors.connected

    def _loaded(self, prediction_id: str) -> bool:
        return self._mirrors.loaded(prediction_id)

    def knows(self, prediction_id: str) -> bool:
        if self._loaded(prediction_id) and self.mirror.knows(prediction_id):
            return True
        try:
            return bool(self._redis.exists(PredictionKeys.of(prediction_id).snap))
        except REDIS_ERRORS:
            raise unavailable() from None

    def latest(self, prediction_id: str) -> Mapping[str, Any] | None:
        keys = PredictionKeys.of(prediction_id)
        try:
            raw, length = self._redis.mget([keys.snap, keys.loglen])
        except REDIS_ERRORS:
            raise unavailable() from None
        if raw is None:
            return None
        data = json.loads(raw)
        return {**data, "logs_length": int(length or 0)} if isinstance(data, dict) else None

    def log_text(self, prediction_id: str) -> str | None:
        if self._loaded(prediction_id) and not self.mirror.stale_logs(prediction_id):
            held = self.mirror.log_text(prediction_id)
            if held is not None:
                return held
        keys = PredictionKeys.of(prediction_id)
        try:
            raw, snap = self._redis.mget([keys.log, keys.snap])
        except REDIS_ERRORS:
            raise unavailable() from None
        if snap is None:
            return None
        return text(raw) if raw is not None else ""

    def is_done(self, prediction_id: str) -> bool:
        """Known to be done. False while Redis does not answer: the loops that ask (watchers,
        the output reader) carry on and meet the outage where they handle it, when they publish."""
        if self._loaded(prediction_id) and self.mirror.is_done(prediction_id):
            return True
        try:
            return bool(self._redis.exists(PredictionKeys.of(prediction_id).done))
        except REDIS_ERRORS:
            return False

    def replay(self, prediction_id: str, last_event_id: str | None) -> Replay:
        self._mirrors.ensure(prediction_id)
        return self.mirror.replay(prediction_id, last_event_id)

    def events_after(self, prediction_id: str, cursor: Key | None) -> tuple[list[HubEvent], Key | None]:
        return self.mirror.events_after(prediction_id, cursor)

    def attach(self, prediction_ids: Iterable[str], waker: Waker) -> None:
        ids = list(prediction_ids)
        for prediction_id in ids:
            self._mirrors.ensure(prediction_id)
        self.mirror.attach(ids, waker)

    def detach(self, prediction_ids: Iterable[str], waker: Waker) -> None:
        self.streams_closed += 1
        self.mirror.detach(prediction_ids, waker)

    def subscriber_count(self, prediction_id: str) -> int:
        return self.mirror.subscriber_count(prediction_id)

    def idle_for(self, prediction_id: str) -> float:
        return self.mirror.idle_for(prediction_id)

    def open_streams(self) -> int:
        return self.mirror.open_streams()

    def reap(self) -> int:
        """Forget mirrors (and their pub/sub interest) nobody here follows any more."""
        return self._mirrors.reap()

    def close(self) -> None:
        """End streams (they resume on another worker) and stop listening to Redis."""
        self.closing = True
        self.mirror.wake_all()
        self._mirrors.close()

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except REDIS_ERRORS:
            return False


def _core(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """The state Redis compares and stores: the snapshot with `logs` null, no offset or length."""
    return {k: (None if k == "logs" else v) for k, v in snapshot.items() if k not in ("logs_offset", "logs_length")}
