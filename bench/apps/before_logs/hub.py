"""In-process fan-out of prediction events, with a bounded history for resume.

Design, chosen for memory per idle stream and fan-out cost:
- every event is encoded to SSE bytes once, when published; subscribers share
  those bytes (a multiplexed stream adds only its own `id:` line);
- a subscriber is a cursor into the channel's history plus one wake-up flag per
  connection, not a queue: a reader that stops reading costs nothing, and one
  that falls behind the bounded history is coalesced to the latest snapshot;
- event ids are "<milliseconds>-<sequence>", like Redis stream ids, so they are
  ordered per prediction and ids from an earlier process stay comparable.

Only `threading` primitives are used: under gunicorn's gevent worker they are
patched into cooperative ones, and under `flask run` they are real threads.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .sse import encode_fields

__all__ = ["TERMINAL_STATUSES", "HubEvent", "MemoryHub", "Replay", "Waker", "parse_event_id"]

TERMINAL_STATUSES = frozenset({"succeeded", "failed", "canceled", "aborted"})
EventKind = Literal["snapshot", "output", "upstream", "done"]
Key = tuple[int, int]


def parse_event_id(text: str | None) -> Key | None:
    """The ordering key of an event id, or None for anything Relay never issues."""
    if not text or len(text) > 40:
        return None
    ms, sep, seq = text.partition("-")
    if not sep or not ms.isdigit() or not seq.isdigit() or not ms.isascii() or not seq.isascii():
        return None
    return int(ms), int(seq)


@dataclass(frozen=True, slots=True)
class HubEvent:
    """One published event: its id, kind, JSON data and its SSE bytes, encoded once."""

    id: str
    key: Key
    kind: EventKind
    data: Mapping[str, Any]
    body: bytes  # `event:` and `data:` lines, for streams that write their own `id:`
    wire: bytes  # `id:` line + body, for single-prediction streams

    @classmethod
    def build(cls, key: Key, kind: EventKind, data: Mapping[str, Any]) -> HubEvent:
        event_id = f"{key[0]}-{key[1]}"
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        body = encode_fields(text, event=None if kind == "snapshot" else kind)
        return cls(event_id, key, kind, data, body, f"id: {event_id}\n".encode() + body)


class Waker:
    """One per open connection: set when any channel it follows gets an event."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> bool:
        """Wait until woken or `timeout` passes; clears the flag; True if woken."""
        woken = self._event.wait(timeout)
        self._event.clear()
        return woken


@dataclass(slots=True)
class Replay:
    """What a (re)connecting subscriber gets first, and where its cursor then stands."""

    events: list[HubEvent]
    cursor: Key | None
    finished: bool = False  # resume at or after `done`: answer 204
    source: Literal["history", "snapshot"] = "snapshot"  # where a resume was served from


@dataclass(slots=True)
class _Channel:
    history: deque[HubEvent]
    snapshot: HubEvent | None = None
    upstream: HubEvent | None = None
    done: HubEvent | None = None
    last_key: Key = (0, 0)
    trimmed_through: Key | None = None
    history_bytes: int = 0
    wakers: set[Waker] = field(default_factory=set)
    last_active: float = field(default_factory=time.monotonic)


def _accepts(channel: _Channel, kind: EventKind, data: Mapping[str, Any]) -> bool:
    """Whether an event changes anything: nothing after done, no state twice in a row."""
    if channel.done is not None:
        return False
    if kind == "snapshot":
        return channel.snapshot is None or channel.snapshot.data != data
    if kind == "upstream":
        if channel.upstream is None:
            return data.get("state") != "ok"
        return channel.upstream.data != data
    return True


class MemoryHub:
    """Per-prediction channels in this process; see the module docstring."""

    kind = "memory"

    def __init__(self, history_size: int = 256, history_bytes: int = 4 * 2**20,
                 retention: float = 900.0) -> None:
        self._channels: dict[str, _Channel] = {}
        self._lock = threading.Lock()
        self._history_size = history_size
        self._history_bytes = history_bytes
        self._retention = retention
        self.closing = False
        self.coalesced = 0
        self.streams_closed = 0
        self.on_coalesce: Callable[[], None] | None = None

    # -- publishing ---------------------------------------------------------
    def publish(self, prediction_id: str, kind: EventKind, data: Mapping[str, Any]) -> HubEvent | None:
        """Append an event; None when it would repeat the state or follow `done`."""
        with self._lock:
            channel = self._channel(prediction_id)
            if not _accepts(channel, kind, data):
                return None
            event = HubEvent.build(self._next_key(channel), kind, data)
            self._append(channel, event)
            wakers = list(channel.wakers)
        for waker in wakers:
            waker.set()
        return event

    def _ingest(self, prediction_id: str, event: HubEvent) -> bool:
        """Add an event issued elsewhere (Redis); False if held already or a repeat of the state."""
        with self._lock:
            channel = self._channel(prediction_id)
            if event.key <= channel.last_key:
                if event.key < channel.last_key and not any(e.key == event.key for e in channel.history):
                    # Arrived out of order (only while a mirror is being loaded): put it in its place.
                    position = sum(1 for e in channel.history if e.key < event.key)
                    channel.history.insert(position, event)
                    channel.history_bytes += len(event.wire)
                return False
            if not _accepts(channel, event.kind, event.data):
                # Same state again (say, after Redis lost its keys): subscribers never see a repeat.
                channel.last_key = event.key
                return False
            channel.last_key = event.key
            self._append(channel, event)
            wakers = list(channel.wakers)
        for waker in wakers:
            waker.set()
        return True

    def _next_key(self, channel: _Channel) -> Key:
        now_ms = int(time.time() * 1000)
        last_ms, last_seq = channel.last_key
        key = (now_ms, 0) if now_ms > last_ms else (last_ms, last_seq + 1)
        channel.last_key = key
        return key

    def _append(self, channel: _Channel, event: HubEvent) -> None:
        if event.kind == "snapshot":
            channel.snapshot = event
        elif event.kind == "upstream":
            channel.upstream = event
        elif event.kind == "done":
            channel.done = event
        channel.history.append(event)
        channel.history_bytes += len(event.wire)
        while len(channel.history) > self._history_size or (
            channel.history_bytes > self._history_bytes and len(channel.history) > 1
        ):
            dropped = channel.history.popleft()
            channel.history_bytes -= len(dropped.wire)
            channel.trimmed_through = dropped.key
        channel.last_active = time.monotonic()

    def _channel(self, prediction_id: str) -> _Channel:
        channel = self._channels.get(prediction_id)
        if channel is None:
            channel = self._channels[prediction_id] = _Channel(history=deque())
        return channel

    # -- reading ------------------------------------------------------------
    def knows(self, prediction_id: str) -> bool:
        """True when this hub holds a snapshot of the prediction."""
        channel = self._channels.get(prediction_id)
        return channel is not None and channel.snapshot is not None

    def latest(self, prediction_id: str) -> Mapping[str, Any] | None:
        """The latest snapshot's data, if any."""
        channel = self._channels.get(prediction_id)
        return channel.snapshot.data if channel and channel.snapshot else None

    def is_done(self, prediction_id: str) -> bool:
        channel = self._channels.get(prediction_id)
        return channel is not None and channel.done is not None

    def replay(self, prediction_id: str, last_event_id: str | None) -> Replay:
        """Events for a subscriber that last saw `last_event_id` (None: a new one)."""
        with self._lock:
            channel = self._channel(prediction_id)
            key = parse_event_id(last_event_id)
            if key is not None:
                if channel.done is not None and key >= channel.done.key:
                    return Replay([], key, finished=True)
                if any(event.key == key for event in channel.history):
                    return Replay([e for e in channel.history if e.key > key], channel.last_key,
                                  source="history")
            return self._from_snapshot(channel)

    def _from_snapshot(self, channel: _Channel) -> Replay:
        if channel.snapshot is None:
            return Replay([], None)
        start = channel.snapshot.key
        events = [channel.snapshot]
        upstream = channel.upstream
        if upstream is not None and upstream.key < start and upstream.data.get("state") != "ok":
            events.insert(0, upstream)
        events.extend(e for e in channel.history if e.key > start)
        return Replay(events, channel.last_key)

    def events_after(self, prediction_id: str, cursor: Key | None) -> tuple[list[HubEvent], Key | None]:
        """New events since `cursor`, coalesced to the latest snapshot if history moved past it."""
        with self._lock:
            channel = self._channels.get(prediction_id)
            if channel is None or channel.last_key == cursor:
                return [], cursor
            trimmed = channel.trimmed_through
            if cursor is not None and trimmed is not None and cursor < trimmed:
                self.coalesced += 1
                if self.on_coalesce is not None:
                    self.on_coalesce()
                replay = self._from_snapshot(channel)
                return [e for e in replay.events if e.key > cursor], replay.cursor
            if cursor is None:
                return list(channel.history), channel.last_key
            new: list[HubEvent] = []
            for event in reversed(channel.history):
                if event.key <= cursor:
                    break
                new.append(event)
            new.reverse()
            return new, channel.last_key

    # -- subscribers ----------------------------------------------------------
    def attach(self, prediction_ids: Iterable[str], waker: Waker) -> None:
        with self._lock:
            for prediction_id in prediction_ids:
                self._channel(prediction_id).wakers.add(waker)

    def detach(self, prediction_ids: Iterable[str], waker: Waker) -> None:
        with self._lock:
            self.streams_closed += 1
            now = time.monotonic()
            for prediction_id in prediction_ids:
                channel = self._channels.get(prediction_id)
                if channel is not None:
                    channel.wakers.discard(waker)
                    channel.last_active = now

    def subscriber_count(self, prediction_id: str) -> int:
        channel = self._channels.get(prediction_id)
        return len(channel.wakers) if channel else 0

    def idle_for(self, prediction_id: str) -> float:
        """Seconds since the channel last had a subscriber or an event (0 while watched)."""
        channel = self._channels.get(prediction_id)
        if channel is None:
            return float("inf")
        if channel.wakers:
            return 0.0
        return time.monotonic() - channel.last_active

    def open_streams(self) -> int:
        return len({w for c in self._channels.values() for w in c.wakers})

    # -- housekeeping ---------------------------------------------------------
    def reap(self) -> int:
        """Forget channels nobody has watched or fed for the retention time."""
        now = time.monotonic()
        with self._lock:
            stale = [pid for pid, c in self._channels.items()
                     if not c.wakers and now - c.last_active > self._retention]
            for pid in stale:
                del self._channels[pid]
        return len(stale)

    def close(self) -> None:
        """Wake every stream so it ends now (worker shutdown); they resume elsewhere."""
        self.closing = True
        with self._lock:
            wakers = {w for c in self._channels.values() for w in c.wakers}
        for waker in wakers:
            waker.set()
