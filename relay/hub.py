"""The hub's interface and its in-process implementation.

A hub fans each prediction's events out to the streams following it, and keeps
what a (re)connecting stream needs: the latest snapshot, the log once, a history
of recent events bounded by count and bytes, and `done`.

Design, chosen for memory per idle stream and fan-out cost:
- every event is encoded to SSE bytes once (`encode_data`, `HubEvent.build`);
  subscribers share those bytes (a multiplexed stream adds only its own `id:`);
- the log travels as `logs` deltas; snapshots in the history carry only its
  length. A connecting stream gets one "tail snapshot" (the state with the
  log's tail), built once per state and shared (relay/channel.py);
- a subscriber is a cursor into the history plus one wake-up flag per
  connection, not a queue: one that falls behind is coalesced to the tail snapshot;
- event ids are "<milliseconds>-<sequence>", like Redis stream ids, so they are
  ordered per prediction and ids from an earlier process stay comparable.

`MemoryHub` keeps its channels in one `Channels` store (relay/channels.py);
`RedisHub` (relay/redis_hub.py) keeps one as its local mirror of Redis.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from .channels import Channels
from .events import (
    LOG_FIELDS,
    TERMINAL_STATUSES,
    EventKind,
    HubEvent,
    Key,
    Replay,
    Waker,
    encode_data,
    format_key,
    log_tail,
    parse_event_id,
)

__all__ = ["LOG_FIELDS", "TERMINAL_STATUSES", "EventKind", "Hub", "HubEvent", "Key", "MemoryHub",
           "Replay", "Waker", "encode_data", "format_key", "log_tail", "parse_event_id"]

class Hub(Protocol):
    """What the feed, the watchers and the streams need of a hub (memory or Redis)."""

    kind: str
    closing: bool
    streams_closed: int

    @property
    def coalesced(self) -> int: ...
    @property
    def on_coalesce(self) -> Callable[[], None] | None: ...
    @on_coalesce.setter
    def on_coalesce(self, callback: Callable[[], None] | None) -> None: ...

    def publish(self, prediction_id: str, kind: EventKind, data: Mapping[str, Any]) -> HubEvent | None: ...
    def publish_state(self, prediction_id: str, snapshot: Mapping[str, Any]) -> bool: ...
    def knows(self, prediction_id: str) -> bool: ...
    def latest(self, prediction_id: str) -> Mapping[str, Any] | None: ...
    def log_text(self, prediction_id: str) -> str | None: ...
    def is_done(self, prediction_id: str) -> bool: ...
    def replay(self, prediction_id: str, last_event_id: str | None) -> Replay: ...
    def events_after(self, prediction_id: str, cursor: Key | None) -> tuple[list[HubEvent], Key | None]: ...
    def attach(self, prediction_ids: Iterable[str], waker: Waker) -> None: ...
    def detach(self, prediction_ids: Iterable[str], waker: Waker) -> None: ...
    def subscriber_count(self, prediction_id: str) -> int: ...
    def idle_for(self, prediction_id: str) -> float: ...
    def open_streams(self) -> int: ...
    def reap(self) -> int: ...
    def close(self) -> None: ...
    def ping(self) -> bool: ...


class MemoryHub:
    """Per-prediction channels in this process; see the module docstring."""

    kind = "memory"

    def __init__(self, history_size: int = 256, history_bytes: int = 2**20, retention: float = 900.0,
                 tail_bytes: int = 16384, memory_bytes: int = 64 * 2**20) -> None:
        self.channels = Channels(history_size=history_size, history_bytes=history_bytes,
                                 tail_bytes=tail_bytes, memory_bytes=memory_bytes, retention=retention)
        self.closing = False
        self.streams_closed = 0

    @property
    def coalesced(self) -> int:
        return self.channels.coalesced

    @property
    def on_coalesce(self) -> Callable[[], None] | None:
        return self.channels.on_coalesce

    @on_coalesce.setter
    def on_coalesce(self, callback: Callable[[], None] | None) -> None:
        self.channels.on_coalesce = callback

    def publish(self, prediction_id: str, kind: EventKind, data: Mapping[str, Any]) -> HubEvent | None:
        """Append an event; None when it would repeat the state or follow `done`."""
        return self.channels.publish(prediction_id, kind, data, self._next_key)

    def publish_state(self, prediction_id: str, snapshot: Mapping[str, Any]) -> bool:
        """A snapshot holding the whole log: the log's growth as a `logs` delta, then the
        snapshot if anything else changed (or the log was rewritten). True if anything was sent."""
        return self.channels.publish_state(prediction_id, snapshot, self._next_key)

    @staticmethod
    def _next_key(last: Key) -> Key:
        now_ms = int(time.time() * 1000)
        return (now_ms, 0) if now_ms > last[0] else (last[0], last[1] + 1)

    def knows(self, prediction_id: str) -> bool:
        return self.channels.knows(prediction_id)

    def latest(self, prediction_id: str) -> Mapping[str, Any] | None:
        return self.channels.latest(prediction_id)

    def log_text(self, prediction_id: str) -> str | None:
        return self.channels.log_text(prediction_id)

    def is_done(self, prediction_id: str) -> bool:
        return self.channels.is_done(prediction_id)

    def replay(self, prediction_id: str, last_event_id: str | None) -> Replay:
        return self.channels.replay(prediction_id, last_event_id)

    def events_after(self, prediction_id: str, cursor: Key | None) -> tuple[list[HubEvent], Key | None]:
        return self.channels.events_after(prediction_id, cursor)

    def attach(self, prediction_ids: Iterable[str], waker: Waker) -> None:
        self.channels.attach(prediction_ids, waker)

    def detach(self, prediction_ids: Iterable[str], waker: Waker) -> None:
        self.streams_closed += 1
        self.channels.detach(prediction_ids, waker)

    def subscriber_count(self, prediction_id: str) -> int:
        return self.channels.subscriber_count(prediction_id)

    def idle_for(self, prediction_id: str) -> float:
        return self.channels.idle_for(prediction_id)

    def open_streams(self) -> int:
        return self.channels.open_streams()

    def reap(self) -> int:
        return len(self.channels.reap())

    def close(self) -> None:
        """Wake every stream so it ends now (worker shutdown); they resume elsewhere."""
        self.closing = True
        self.channels.wake_all()

    def ping(self) -> bool:
        return True
