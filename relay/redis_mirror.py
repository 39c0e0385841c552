"""The local mirror of Redis in one process: loading it once, and one pub/sub listener.

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
from collections.abc import Mapping
from typing import Any

import redis

from .channel import with_log
from .channels import Channels
from .events import HubEvent, Key, format_key, parse_event_id
from .redis_keys import EVENTS_CHANNEL, REDIS_ERRORS, PredictionKeys, unavailable

__all__ = ["RedisMirror", "event_from_fields", "text"]

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


class RedisMirror:
    """This process's copy of the predictions its subscribers follow; see the module docstring."""

    def __init__(self, client: redis.Redis, channels: Channels, history_size: int) -> None:
        self.channels = channels
        channels.on_forget = self._forget
        self._redis = client
        self._history_size = history_size
        self._loads: dict[str, _Load] = {}
        self._lock = threading.Lock()
        self.closing = False
        self.connected = False
        self._listener: threading.Thread | None = None
        self._listening = threading.Event()

    def loaded(self, prediction_id: str) -> bool:
        load = self._loads.get(prediction_id)
        return load is not None and load.ready.is_set() and not load.failed

    def ensure(self, prediction_id: str) -> None:
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
                self.channels.ingest(prediction_id, event)
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
        events = [e for e in (event_from_fields(prediction_id, i, f) for i, f in entries) if e is not None]
        snapshot = None
        first = events[0].key if events else None
        snap_key = parse_event_id(text(snapid)) if snapid is not None else None
        if snap_key is not None and snap is not None and (first is None or snap_key < first):
            # The latest snapshot is older than the recent history (outputs flooded it): its state only.
            snapshot = event_from_fields(prediction_id, format_key(snap_key),
                                          {"k": "snapshot", "d": text(snap), "n": text(length or b"0")})
        trimmed = None
        if events and int(total) > len(entries):
            trimmed = _before(events[0].key)
        self.channels.load(prediction_id, snapshot, events, text(log_raw) if log_raw is not None else "", trimmed)

    def _forget(self, prediction_id: str) -> None:
        # Called under the mirror's lock, so without ours (we take ours first elsewhere).
        self._loads.pop(prediction_id, None)

    def _reload_log(self, prediction_id: str) -> None:
        raw = self._redis.get(PredictionKeys.of(prediction_id).log)
        self.channels.set_log(prediction_id, text(raw) if raw is not None else "")

    def reap(self) -> int:
        """Forget mirrors (and their pub/sub interest) nobody here follows any more."""
        gone = self.channels.reap()
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
                        self._on_message(text(message["data"]))
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
        for prediction_id, last in self.channels.mirrored():
            if not self.loaded(prediction_id):
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
                event = event_from_fields(prediction_id, event_id, fields)
                if event is not None:
                    self.channels.ingest(prediction_id, event)
            self.channels.set_log(prediction_id, text(log_raw) if log_raw is not None else "")

    def _on_message(self, message: str) -> None:
        prediction_id, _, rest = message.partition("\n")
        load = self._loads.get(prediction_id)
        if load is None:
            return
        event_id, _, fields = rest.partition("\n")
        try:
            event = event_from_fields(prediction_id, event_id, json.loads(fields))
        except ValueError:
            event = None
        if event is None:
            return
        with self._lock:
            if load.held is not None:
                load.held.append(event)  # the mirror is loading: applied in order once it is
                return
        self.channels.ingest(prediction_id, event)
        if self.channels.stale_logs(prediction_id):
            self._reload_log(prediction_id)

    def close(self) -> None:
        self.closing = True
        listener = self._listener
        if listener is not None and listener is not threading.current_thread():
            listener.join(3)


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _before(key: Key) -> Key:
    return (key[0], key[1] - 1) if key[1] else (key[0] - 1, 2**63)


def _entries(result: Any) -> list[tuple[str, dict[str, str]]]:
    """XRANGE/XREVRANGE answers as (id, fields) pairs, all text."""
    return [(text(raw_id), {text(k): text(v) for k, v in (fields or {}).items()})
            for raw_id, fields in (result or []) if raw_id is not None]


def event_from_fields(prediction_id: str, event_id: str, fields: Mapping[str, str]) -> HubEvent | None:
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
