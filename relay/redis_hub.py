"""The hub across processes and machines, on Redis.

Redis holds each prediction's truth: a stream of its events (bounded with
MAXLEN, expiring with the prediction's other keys) whose ids Redis issues, so
ids are ordered and valid on every process; the latest snapshot (to refuse a
repeat atomically, whichever process publishes); and `done`.

Each process keeps a local mirror of the predictions its own subscribers
follow (MemoryHub's channels), fed by ONE pub/sub connection per process on
one channel, never one Redis connection per browser. Fan-out to thousands of
local streams then reads memory, and an event's bytes are encoded once per
process. Publishing runs one Lua script (dedupe, XADD, PUBLISH) so messages
leave Redis in id order. If the pub/sub connection drops, the listener
reconnects with backoff and backfills every mirror from the stream with
XRANGE, so nothing is lost or repeated; streams keep their heartbeats meanwhile.

Keys (one hash tag per prediction, for Redis Cluster):
  relay:{<id>}:events   stream of events: fields k (kind), d (JSON data)
  relay:{<id>}:snap     latest snapshot JSON;  relay:{<id>}:snapid  its event id
  relay:{<id>}:up       latest upstream-state JSON
  relay:{<id>}:done     id of the `done` event
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

import redis

from .coordination import HubUnavailable
from .hub import EventKind, HubEvent, MemoryHub, Replay, Waker, parse_event_id

__all__ = ["EVENTS_CHANNEL", "RedisHub"]

log = logging.getLogger(__name__)

EVENTS_CHANNEL = "relay:events"

_PUBLISH = """
local kind, data, state = ARGV[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', KEYS[5]) == 1 then return false end
if kind == 'snapshot' and redis.call('GET', KEYS[2]) == data then return false end
if kind == 'upstream' then
  local held = redis.call('GET', KEYS[4])
  if held == data or ((not held) and state == 'ok') then return false end
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'k', kind, 'd', data)
local ttl = tonumber(ARGV[5])
if kind == 'snapshot' then
  redis.call('SET', KEYS[2], data, 'EX', ttl)
  redis.call('SET', KEYS[3], id, 'EX', ttl)
elseif kind == 'upstream' then
  redis.call('SET', KEYS[4], data, 'EX', ttl)
elseif kind == 'done' then
  redis.call('SET', KEYS[5], id, 'EX', ttl)
end
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('PUBLISH', ARGV[6], ARGV[7] .. '\\n' .. id .. '\\n' .. kind .. '\\n' .. data)
return id
"""

_KINDS: frozenset[str] = frozenset({"snapshot", "output", "upstream", "done"})


_REDIS_ERRORS = (redis.RedisError, OSError)


def _unavailable() -> HubUnavailable:
    return HubUnavailable("Relay's shared state (Redis) is not answering; retry in a moment.", retry_after=2)


def _keys(prediction_id: str) -> list[str]:
    base = f"relay:{{{prediction_id}}}:"
    return [base + name for name in ("events", "snap", "snapid", "up", "done")]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisHub(MemoryHub):
    """MemoryHub's local channels, used as mirrors of Redis; see the module docstring."""

    kind = "redis"

    def __init__(self, client: redis.Redis, history_size: int = 256, ttl: int = 3600,
                 mirror_retention: float = 60.0) -> None:
        super().__init__(history_size=history_size, retention=mirror_retention)
        self._redis = client
        self._ttl = ttl
        self._script = client.register_script(_PUBLISH)
        self._mirrored: set[str] = set()
        self._mirror_lock = threading.Lock()
        self.connected = False
        self._listener: threading.Thread | None = None
        self._listening = threading.Event()

    # -- publishing -----------------------------------------------------------------
    def publish(self, prediction_id: str, kind: EventKind, data: Mapping[str, Any]) -> HubEvent | None:
        """Publish through Redis; every process's subscribers get it from pub/sub."""
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        state = str(data.get("state", "")) if kind == "upstream" else ""
        try:
            event_id = self._script(keys=_keys(prediction_id),
                                    args=[kind, text, state, self._history_size, self._ttl,
                                          EVENTS_CHANNEL, prediction_id])
        except _REDIS_ERRORS:
            raise _unavailable() from None
        if event_id is None:
            return None
        key = parse_event_id(_text(event_id))
        assert key is not None
        return HubEvent.build(key, kind, data)

    # -- reading ---------------------------------------------------------------------
    def knows(self, prediction_id: str) -> bool:
        if prediction_id in self._mirrored and super().knows(prediction_id):
            return True
        try:
            return bool(self._redis.exists(_keys(prediction_id)[1]))
        except _REDIS_ERRORS:
            raise _unavailable() from None

    def latest(self, prediction_id: str) -> Mapping[str, Any] | None:
        try:
            raw = self._redis.get(_keys(prediction_id)[1])
        except _REDIS_ERRORS:
            raise _unavailable() from None
        if raw is None:
            return None
        data = json.loads(raw)
        return data if isinstance(data, dict) else None

    def is_done(self, prediction_id: str) -> bool:
        if prediction_id in self._mirrored and super().is_done(prediction_id):
            return True
        try:
            return bool(self._redis.exists(_keys(prediction_id)[4]))
        except _REDIS_ERRORS:
            raise _unavailable() from None

    def replay(self, prediction_id: str, last_event_id: str | None) -> Replay:
        self._mirror(prediction_id)
        return super().replay(prediction_id, last_event_id)

    def attach(self, prediction_ids: Iterable[str], waker: Waker) -> None:
        ids = list(prediction_ids)
        for prediction_id in ids:
            self._mirror(prediction_id)
        super().attach(ids, waker)

    # -- mirrors -------------------------------------------------------------------------
    def _mirror(self, prediction_id: str) -> None:
        """Start mirroring a prediction locally: load its recent events from Redis."""
        self._start_listener()
        with self._mirror_lock:
            if prediction_id in self._mirrored:
                return
            self._mirrored.add(prediction_id)
        try:
            self._backfill(prediction_id, None)
        except _REDIS_ERRORS:
            with self._mirror_lock:
                self._mirrored.discard(prediction_id)
            raise _unavailable() from None

    def _backfill(self, prediction_id: str, after: str | None) -> None:
        """Ingest the stream's events after `after` (None: the most recent history)."""
        events_key, _snap, snapid_key, _up, _done = _keys(prediction_id)
        if after is None:
            entries = _entries(self._redis.xrevrange(events_key, count=self._history_size))[::-1]
            snapid = self._redis.get(snapid_key)
            wanted = parse_event_id(_text(snapid)) if snapid is not None else None
            first = parse_event_id(entries[0][0]) if entries else None
            if wanted is not None and first is not None and wanted < first:
                # The latest snapshot is older than the recent history (outputs flooded it): fetch it too.
                snap_id = f"{wanted[0]}-{wanted[1]}"
                entries = _entries(self._redis.xrange(events_key, snap_id, snap_id)) + entries
            if entries and int(self._redis.xlen(events_key)) > len(entries):
                self._mark_trimmed(prediction_id, entries[0][0])
        else:
            entries = _entries(self._redis.xrange(events_key, f"({after}", "+"))
        for event_id, fields in entries:
            event = _event_from_entry(event_id, fields)
            if event is not None:
                self._ingest(prediction_id, event)

    def _mark_trimmed(self, prediction_id: str, first_id: str) -> None:
        key = parse_event_id(first_id)
        if key is not None:
            with self._lock:
                channel = self._channel(prediction_id)
                channel.trimmed_through = (key[0], key[1] - 1) if key[1] else (key[0] - 1, 2**63)

    def reap(self) -> int:
        """Forget mirrors (and their pub/sub interest) nobody here follows any more."""
        before = set(self._channels)
        count = super().reap()
        with self._mirror_lock:
            self._mirrored -= before - set(self._channels)
        return count

    # -- pub/sub ---------------------------------------------------------------------------
    def _start_listener(self) -> None:
        with self._mirror_lock:
            if self._listener is None:
                self._listener = threading.Thread(target=self._listen_forever, name="relay-redis-pubsub",
                                                  daemon=True)
                self._listener.start()
        # The first mirror must not load before the subscription is live, or it could miss an event.
        self._listening.wait(5)

    def _listen_forever(self) -> None:
        failures = 0
        while not self.closing:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(EVENTS_CHANNEL)
                pubsub.get_message(timeout=5)  # the subscribe confirmation
                if failures:
                    log.info("Redis pub/sub is back; backfilling %d predictions", len(self._mirrored))
                    self._resync()
                self.connected = True
                self._listening.set()
                failures = 0
                while not self.closing:
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._on_message(_text(message["data"]))
            except (*_REDIS_ERRORS, ValueError) as error:
                if self.closing:
                    return
                failures += 1
                self.connected = False
                if failures == 1:
                    log.error("lost Redis (REDIS_URL): %s; streams stay open and resume when it is back", error)
                time.sleep(min(5.0, 0.2 * 2**failures))
            finally:
                try:
                    pubsub.close()
                except _REDIS_ERRORS:
                    pass

    def _resync(self) -> None:
        for prediction_id in list(self._mirrored):
            channel = self._channels.get(prediction_id)
            last = channel.last_key if channel else (0, 0)
            try:
                self._backfill(prediction_id, f"{last[0]}-{last[1]}" if last != (0, 0) else None)
            except _REDIS_ERRORS:
                log.warning("could not backfill %s after reconnecting to Redis", prediction_id)

    def _on_message(self, text: str) -> None:
        prediction_id, _, rest = text.partition("\n")
        if prediction_id not in self._mirrored:
            return
        event_id, _, rest = rest.partition("\n")
        kind, _, data = rest.partition("\n")
        event = _event_from_entry(event_id, {b"k": kind.encode(), b"d": data.encode()})
        if event is not None:
            self._ingest(prediction_id, event)

    def close(self) -> None:
        """End streams (see MemoryHub.close) and stop listening to Redis."""
        super().close()
        listener = self._listener
        if listener is not None and listener is not threading.current_thread():
            listener.join(3)

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except _REDIS_ERRORS:
            return False


def _entries(result: Any) -> list[tuple[str, Mapping[Any, Any]]]:
    """XRANGE/XREVRANGE answers as (id, fields) pairs with text ids."""
    return [(_text(raw_id), fields or {}) for raw_id, fields in (result or []) if raw_id is not None]


def _event_from_entry(event_id: str, fields: Mapping[Any, Any]) -> HubEvent | None:
    key = parse_event_id(event_id)
    kind = _text(fields.get(b"k") or fields.get("k") or "")
    raw = fields.get(b"d") or fields.get("d")
    if key is None or kind not in _KINDS or raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    return HubEvent.build(key, kind, data)  # type: ignore[arg-type]
