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

A mirror is loaded once, by the first subscriber that needs it, in one MULTI
(recent events, latest snapshot, the log); subscribers arriving meanwhile wait
for it, and pub/sub messages for it are held until it is loaded, then applied in
order. So several subscribers resuming at once on a process that has not mirrored
the prediction yet (say, the worker gunicorn just started) each get exactly what
they missed. If the pub/sub connection drops, the listener reconnects with backoff
and backfills every mirror from the stream, so nothing is lost or repeated.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import redis

from .channel import with_log
from .channels import Channels
from .events import EventKind, HubEvent, Key, Replay, Waker, encode_data, format_key, log_tail, parse_event_id
from .redis_keys import EVENTS_CHANNEL, REDIS_ERRORS, PredictionKeys, unavailable
from .redis_scripts import PUBLISH, STATE

__all__ = ["RedisHub"]

log = logging.getLogger(__name__)

_KINDS: frozenset[str] = frozenset({"snapshot", "logs", "output", "upstream", "done"})
_LOAD_WAIT = 10.0


class _Load:
    """A mirror being loaded: who waits for it, and the messages that arrive meanwhile."""

    __slots__ = ("failed", "held", "ready")

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.held: list[HubEvent] | None = []
        self.failed = False


class RedisHub:
    """Redis as the truth, a local mirror for fan-out; see the module docstring."""

    kind = "redis"

    def __init__(self, client: redis.Redis, history_size: int = 256, history_bytes: int = 2**20,
                 tail_bytes: int = 16384, memory_bytes: int = 64 * 2**20, ttl: int = 3600,
                 mirror_retention: float = 60.0) -> None:
        self.mirror = Channels(history_size=history_size, history_bytes=history_bytes, tail_bytes=tail_bytes,
                               memory_bytes=memory_bytes, retention=mirror_retention)
        self.mirror.on_forget = self._forget
        self._redis = client
        self._history_size = history_size
        self._history_bytes = history_bytes
        self._tail_bytes = tail_bytes
        self._ttl = ttl
        self._publish = client.register_script(PUBLISH)
        self._state = client.register_script(STATE)
        self._loads: dict[str, _Load] = {}
        self._lock = threading.Lock()
        self.closing = False
        self.connected = False
        self.streams_closed = 0
        self._listener: threading.Thread | None = None
        self._listening = threading.Event()

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
            return _event_from_fields(prediction_id, ids[-1], self._snapshot_fields(data)) if ids else None
        text = encode_data(data)
        state = str(data.get("state", "")) if kind == "upstream" else ""
        try:
            ids = self._publish(keys=PredictionKeys.of(prediction_id).all(),
                                args=[*self._args(prediction_id), kind, text, state])
        except REDIS_ERRORS:
            raise unavailable() from None
        if not ids:
            return None
        key = parse_event_id(_text(ids[-1]))
        assert key is not None
        return HubEvent.build(key, kind, data)

    def publish_state(self, prediction_id: str, snapshot: Mapping[str, Any]) -> bool:
        return bool(self._publish_state(prediction_id, snapshot))

    def _publish_state(self, prediction_id: str, snapshot: Mapping[str, Any]) -> list[str]:
        log_text = snapshot.get("logs") or ""
        core = _core(snapshot)
        offset, tail = log_tail(log_text, self._tail_bytes)
        try:
            ids = self._state(keys=PredictionKeys.of(prediction_id).all(),
                              args=[*self._args(prediction_id), encode_data(core), log_text, len(log_text),
                                    tail, offset])
        except REDIS_ERRORS:
            raise unavailable() from None
        return [_text(i) for i in ids or []]

    @staticmethod
    def _snapshot_fields(snapshot: Mapping[str, Any]) -> dict[str, str]:
        return {"k": "snapshot", "d": encode_data(_core(snapshot)), "n": str(len(snapshot.get("logs") or ""))}

    # -- reading ---------------------------------------------------------------------
    def _loaded(self, prediction_id: str) -> bool:
        load = self._loads.get(prediction_id)
        return load is not None and load.ready.is_set() and not load.failed

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
        return _text(raw) if raw is not None else ""

    def is_done(self, prediction_id: str) -> bool:
        if self._loaded(prediction_id) and self.mirror.is_done(prediction_id):
            return True
        try:
            return bool(self._redis.exists(PredictionKeys.of(prediction_id).done))
        except REDIS_ERRORS:
            raise unavailable() from None

    def replay(self, prediction_id: str, last_event_id: str | None) -> Replay:
        self._mirror(prediction_id)
        return self.mirror.replay(prediction_id, last_event_id)

    def events_after(self, prediction_id: str, cursor: Key | None) -> tuple[list[HubEvent], Key | None]:
        return self.mirror.events_after(prediction_id, cursor)

    def attach(self, prediction_ids: Iterable[str], waker: Waker) -> None:
        ids = list(prediction_ids)
        for prediction_id in ids:
            self._mirror(prediction_id)
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

    # -- mirrors -------------------------------------------------------------------------
    def _mirror(self, prediction_id: str) -> None:
        """Make sure this process mirrors the prediction, loading it once (see the docstring)."""
        self._start_listener()
        with self._lock:
            load = self._loads.get(prediction_id)
            loader = load is None
            if load is None:
                load = self._loads[prediction_id] = _Load()
        if not loader:
            if not load.ready.wait(_LOAD_WAIT) or load.failed:
                raise unavailable()
            return
        try:
            self._load(prediction_id)
        except REDIS_ERRORS:
            with self._lock:
                load.failed = True
                self._loads.pop(prediction_id, None)
            load.ready.set()
            raise unavailable() from None
        with self._lock:
            for event in load.held or []:
                self.mirror.ingest(prediction_id, event)
            load.held = None
        load.ready.set()

    def _load(self, prediction_id: str) -> None:
        keys = PredictionKeys.of(prediction_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.xrevrange(keys.events, count=self._history_size)
        pipe.mget([keys.snapid, keys.snap, keys.loglen, keys.log])
        pipe.xlen(keys.events)
        recent, (snapid, snap, length, log_raw), total = pipe.execute()
        entries = _entries(recent)[::-1]
        events = [e for e in (_event_from_fields(prediction_id, i, f) for i, f in entries) if e is not None]
        snapshot = None
        first = events[0].key if events else None
        snap_key = parse_event_id(_text(snapid)) if snapid is not None else None
        if snap_key is not None and snap is not None and (first is None or snap_key < first):
            # The latest snapshot is older than the recent history (outputs flooded it): its state only.
            snapshot = _event_from_fields(prediction_id, format_key(snap_key),
                                          {"k": "snapshot", "d": _text(snap), "n": _text(length or b"0")})
        trimmed = None
        if events and int(total) > len(entries):
            trimmed = _before(events[0].key)
        self.mirror.load(prediction_id, snapshot, events, _text(log_raw) if log_raw is not None else "", trimmed)

    def _forget(self, prediction_id: str) -> None:
        # Called under the mirror's lock, so without ours (we take ours first elsewhere).
        self._loads.pop(prediction_id, None)

    def _reload_log(self, prediction_id: str) -> None:
        raw = self._redis.get(PredictionKeys.of(prediction_id).log)
        self.mirror.set_log(prediction_id, _text(raw) if raw is not None else "")

    def reap(self) -> int:
        """Forget mirrors (and their pub/sub interest) nobody here follows any more."""
        gone = self.mirror.reap()
        with self._lock:
            for prediction_id in gone:
                load = self._loads.get(prediction_id)
                if load is not None and load.ready.is_set():
                    del self._loads[prediction_id]
        return len(gone)

    # -- pub/sub ---------------------------------------------------------------------------
    def _start_listener(self) -> None:
        with self._lock:
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
                    log.info("Redis pub/sub is back; backfilling %d predictions", len(self._loads))
                    self._resync()
                self.connected = True
                self._listening.set()
                failures = 0
                while not self.closing:
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._on_message(_text(message["data"]))
            except (*REDIS_ERRORS, ValueError) as error:  # type: ignore[misc]
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
                except REDIS_ERRORS:
                    pass

    def _resync(self) -> None:
        for prediction_id, last in self.mirror.mirrored():
            if not self._loaded(prediction_id):
                continue
            keys = PredictionKeys.of(prediction_id)
            try:
                pipe = self._redis.pipeline(transaction=True)
                pipe.xrange(keys.events, f"({format_key(last)}" if last != (0, 0) else "-", "+")
                pipe.get(keys.log)
                entries, log_raw = pipe.execute()
            except REDIS_ERRORS:
                log.warning("could not backfill %s after reconnecting to Redis", prediction_id)
                continue
            for event_id, fields in _entries(entries):
                event = _event_from_fields(prediction_id, event_id, fields)
                if event is not None:
                    self.mirror.ingest(prediction_id, event)
            self.mirror.set_log(prediction_id, _text(log_raw) if log_raw is not None else "")

    def _on_message(self, text: str) -> None:
        prediction_id, _, rest = text.partition("\n")
        load = self._loads.get(prediction_id)
        if load is None:
            return
        event_id, _, fields = rest.partition("\n")
        event = _event_from_fields(prediction_id, event_id, json.loads(fields))
        if event is None:
            return
        with self._lock:
            if load.held is not None:
                load.held.append(event)  # the mirror is loading: applied in order once it is
                return
        self.mirror.ingest(prediction_id, event)
        if self.mirror.stale_logs(prediction_id):
            self._reload_log(prediction_id)

    def close(self) -> None:
        """End streams (they resume on another worker) and stop listening to Redis."""
        self.closing = True
        self.mirror.wake_all()
        listener = self._listener
        if listener is not None and listener is not threading.current_thread():
            listener.join(3)

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except REDIS_ERRORS:
            return False


def _core(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """The state Redis compares and stores: the snapshot with `logs` null, no offset or length."""
    return {k: (None if k == "logs" else v) for k, v in snapshot.items() if k not in ("logs_offset", "logs_length")}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _before(key: Key) -> Key:
    return (key[0], key[1] - 1) if key[1] else (key[0] - 1, 2**63)


def _entries(result: Any) -> list[tuple[str, dict[str, str]]]:
    """XRANGE/XREVRANGE answers as (id, fields) pairs, all text."""
    return [(_text(raw_id), {_text(k): _text(v) for k, v in (fields or {}).items()})
            for raw_id, fields in (result or []) if raw_id is not None]


def _event_from_fields(prediction_id: str, event_id: str, fields: Mapping[str, str]) -> HubEvent | None:
    """An event from its stream entry or pub/sub message (see relay/redis_scripts.py)."""
    key = parse_event_id(event_id)
    kind = fields.get("k", "")
    if key is None or kind not in _KINDS:
        return None
    try:
        data: Any
        if kind == "logs":
            data = {"id": prediction_id, "offset": int(fields["o"]), "text": fields["t"]}
        elif kind == "snapshot":
            core = json.loads(fields["d"])
            tail = fields.get("t")
            data = with_log(core, tail, int(fields["o"]) if tail is not None else None, int(fields["n"]))
        else:
            data = json.loads(fields["d"])
    except (KeyError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    return HubEvent.build(key, kind, data)  # type: ignore[arg-type]
