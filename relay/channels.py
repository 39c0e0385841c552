"""The channels of one process, under one lock, with one byte budget across all of them.

`MemoryHub` publishes into a `Channels`; `RedisHub` ingests into one the events
Redis issued (its local mirror). Both read from it the same way, so replay,
coalescing and the tail snapshot are written once.

Memory is bounded three ways: each channel's history by count and bytes; a
finished channel keeps its last FINISHED_KEEPS events, and once nobody has
followed it for a few seconds only what a late resume needs (its final state,
the log once, `done`); and when every channel together holds more than
`memory_bytes`, the least recently active ones shed their history (resumes there
get the tail snapshot), then unwatched ones are forgotten, finished ones first (a
later subscriber makes the service fetch the prediction again).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .channel import Channel, with_log
from .events import LOG_FIELDS, EventKind, HubEvent, Key, Replay, Waker, log_tail, parse_event_id

__all__ = ["Channels", "NextKey"]

NextKey = Callable[[Key], Key]
FINISHED_KEEPS = 32  # events a finished channel keeps until its grace is over


class Channels:
    def __init__(self, *, history_size: int, history_bytes: int, tail_bytes: int, memory_bytes: int,
                 retention: float) -> None:
        self._channels: dict[str, Channel] = {}
        self._lock = threading.Lock()
        self.history_size = history_size
        self.history_bytes = history_bytes
        self.tail_bytes = tail_bytes
        self.memory_bytes = memory_bytes
        self.retention = retention
        self.total_bytes = 0
        self.coalesced = 0
        self._streams = 0  # attached wakers: one per open stream, however many predictions it follows
        self.on_coalesce: Callable[[], None] | None = None
        self.on_forget: Callable[[str], None] | None = None  # a channel was dropped to keep the budget

    # -- writing ------------------------------------------------------------------------
    def publish(self, prediction_id: str, kind: EventKind, data: Mapping[str, Any],
                next_key: NextKey) -> HubEvent | None:
        if kind == "snapshot":
            events = self._state(prediction_id, data, next_key)
            return next((e for e in events if e.kind == "snapshot"), None)
        with self._lock:
            channel = self._channel(prediction_id)
            if not channel.accepts(kind, data):
                return None
            event = HubEvent.build(next_key(channel.last_key), kind, data)
            self._append(channel, event)
            wakers = list(channel.wakers)
        _wake(wakers)
        return event

    def publish_state(self, prediction_id: str, snapshot: Mapping[str, Any], next_key: NextKey) -> bool:
        return bool(self._state(prediction_id, snapshot, next_key))

    def _state(self, prediction_id: str, snapshot: Mapping[str, Any], next_key: NextKey) -> list[HubEvent]:
        log = snapshot.get("logs") or ""
        core = {k: v for k, v in snapshot.items() if k not in LOG_FIELDS}
        events: list[HubEvent] = []
        with self._lock:
            channel = self._channel(prediction_id)
            if channel.done is not None:
                return []
            held = channel.log
            rewritten = not (len(log) >= len(held) and log.startswith(held))
            if not rewritten and len(log) > len(held):
                delta = {"id": prediction_id, "offset": len(held), "text": log[len(held):]}
                events.append(HubEvent.build(next_key(channel.last_key), "logs", delta))
                self._append(channel, events[-1])
            if rewritten or channel.core != core:
                if rewritten:
                    offset, tail = log_tail(log, self.tail_bytes)
                    data = with_log(snapshot, tail, offset, len(log))
                else:
                    data = with_log(snapshot, None, None, len(log))
                events.append(HubEvent.build(next_key(channel.last_key), "snapshot", data))
                self._append(channel, events[-1])
            if log != channel.log:
                self.total_bytes += channel.set_log(log)
            wakers = list(channel.wakers) if events else []
        _wake(wakers)
        return events

    def ingest(self, prediction_id: str, event: HubEvent) -> bool:
        """Add an event issued elsewhere (Redis), in id order; False if held already or a repeat."""
        with self._lock:
            channel = self._channel(prediction_id)
            if event.key <= channel.last_key:
                return False
            if event.kind == "snapshot" and event.data.get("logs") is None:
                core = {k: v for k, v in event.data.items() if k not in LOG_FIELDS}
                if core == channel.core:  # the same state again (say, Redis lost its keys)
                    channel.last_key = event.key
                    return False
            if not channel.accepts(event.kind, event.data):
                channel.last_key = event.key
                return False
            if event.kind == "logs":
                self.total_bytes += channel.apply_log(int(event.data["offset"]), event.delta_text())
            elif event.kind == "snapshot" and event.data.get("logs") is not None:
                channel.log_stale = True  # rewritten: the mirror reloads the whole log
            self._append(channel, event)
            wakers = list(channel.wakers)
        _wake(wakers)
        return True

    def load(self, prediction_id: str, snapshot: HubEvent | None, events: Iterable[HubEvent], log: str,
             trimmed_through: Key | None) -> None:
        """Fill a fresh mirror: the latest snapshot, the recent history, the whole log."""
        with self._lock:
            channel = self._channel(prediction_id)
            if snapshot is not None:  # older than the history loaded: state only, not history
                self._append(channel, snapshot)
                self.total_bytes += channel.shed(None)
            for event in events:
                if event.key > channel.last_key:
                    self._append(channel, event)
            channel.trimmed_through = trimmed_through
            self.total_bytes += channel.set_log(log)

    def set_log(self, prediction_id: str, log: str) -> None:
        with self._lock:
            channel = self._channels.get(prediction_id)
            if channel is not None:
                self.total_bytes += channel.set_log(log)

    def stale_logs(self, prediction_id: str) -> bool:
        channel = self._channels.get(prediction_id)
        return channel is not None and channel.log_stale

    def _append(self, channel: Channel, event: HubEvent) -> None:
        self.total_bytes += channel.append(event, self.history_size, self.history_bytes)
        if event.kind == "done":  # at once, only the latest events stay for a quick resume
            self.total_bytes += channel.shed_to(FINISHED_KEEPS)
        if self.total_bytes > self.memory_bytes:
            self._shed(keep=channel)

    def _compact(self, channel: Channel) -> None:
        """A finished channel nobody follows: keep the state, the log and what came after it."""
        self.total_bytes += channel.shed(channel.position)

    def _shed(self, keep: Channel) -> None:
        goal = int(self.memory_bytes * 0.9)
        by_age = sorted(self._channels.items(), key=lambda item: item[1].last_active)
        for _pid, channel in by_age:
            if self.total_bytes <= goal:
                return
            if channel is not keep:
                self.total_bytes += channel.shed(None)
        for finished_only in (True, False):
            for pid, channel in by_age:
                if self.total_bytes <= goal:
                    return
                if channel is keep or channel.wakers or (finished_only and channel.done is None):
                    continue
                if self._channels.pop(pid, None) is not None:
                    self.total_bytes -= channel.weight
                    if self.on_forget is not None:
                        self.on_forget(pid)

    def _channel(self, prediction_id: str) -> Channel:
        channel = self._channels.get(prediction_id)
        if channel is None:
            channel = self._channels[prediction_id] = Channel()
        return channel

    # -- reading --------------------------------------------------------------------------
    def knows(self, prediction_id: str) -> bool:
        channel = self._channels.get(prediction_id)
        return channel is not None and channel.snapshot is not None

    def latest(self, prediction_id: str) -> dict[str, Any] | None:
        """The latest state without its log, with the log's current length."""
        channel = self._channels.get(prediction_id)
        if channel is None or channel.core is None:
            return None
        return {**channel.core, "logs_length": len(channel.log)}

    def log_text(self, prediction_id: str) -> str | None:
        channel = self._channels.get(prediction_id)
        return channel.log if channel is not None and channel.snapshot is not None else None

    def is_done(self, prediction_id: str) -> bool:
        channel = self._channels.get(prediction_id)
        return channel is not None and channel.done is not None

    def replay(self, prediction_id: str, last_event_id: str | None) -> Replay:
        key = parse_event_id(last_event_id)
        with self._lock:
            channel = self._channel(prediction_id)
            if key is not None:
                if channel.done is not None and key >= channel.done.key:
                    return Replay([], key, finished=True)
                if channel.knows(key):
                    return Replay(channel.after(key), channel.last_key, source="history")
            events, grown = channel.from_tail(self.tail_bytes)
            self.total_bytes += grown
            return Replay(events, channel.last_key if events else None)

    def events_after(self, prediction_id: str, cursor: Key | None) -> tuple[list[HubEvent], Key | None]:
        """New events since `cursor`, coalesced to the tail snapshot if history moved past it."""
        with self._lock:
            channel = self._channels.get(prediction_id)
            if channel is None or channel.last_key == cursor:
                return [], cursor
            trimmed = channel.trimmed_through
            if cursor is None or (trimmed is not None and cursor < trimmed and not channel.knows(cursor)):
                if cursor is not None:
                    self.coalesced += 1
                    if self.on_coalesce is not None:
                        self.on_coalesce()
                events, grown = channel.from_tail(self.tail_bytes)
                self.total_bytes += grown
                if not events:
                    return [], cursor
                return [e for e in events if cursor is None or e.key > cursor], channel.last_key
            return channel.after(cursor), channel.last_key

    # -- subscribers -------------------------------------------------------------------------
    def attach(self, prediction_ids: Iterable[str], waker: Waker) -> None:
        """Called once per stream, with every prediction it follows (and `detach` once at its end)."""
        with self._lock:
            self._streams += 1
            for prediction_id in prediction_ids:
                self._channel(prediction_id).wakers.add(waker)

    def detach(self, prediction_ids: Iterable[str], waker: Waker) -> None:
        with self._lock:
            self._streams -= 1
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
        # Counted, not gathered from the channels: /healthz asks, and a set of every waker costs
        # a millisecond at thousands of streams.
        return self._streams

    def last_key(self, prediction_id: str) -> Key | None:
        channel = self._channels.get(prediction_id)
        return channel.last_key if channel is not None else None

    def history(self, prediction_id: str) -> list[HubEvent]:
        channel = self._channels.get(prediction_id)
        return list(channel.history) if channel is not None else []

    def mirrored(self) -> list[tuple[str, Key]]:
        return [(pid, channel.last_key) for pid, channel in list(self._channels.items())]

    def reap(self, finished_grace: float = 10.0) -> list[str]:
        """Forget channels nobody has watched or fed for the retention time; compact finished
        ones nobody has followed for `finished_grace` seconds (a quick resume stays exact)."""
        now = time.monotonic()
        with self._lock:
            for channel in self._channels.values():
                if channel.done is not None and not channel.wakers and now - channel.last_active >= finished_grace:
                    self._compact(channel)
            stale = [pid for pid, c in self._channels.items()
                     if not c.wakers and now - c.last_active > self.retention]
            for pid in stale:
                self.total_bytes -= self._channels.pop(pid).weight
        return stale

    def wake_all(self) -> None:
        with self._lock:
            wakers = {w for c in self._channels.values() for w in c.wakers}
        _wake(wakers)


def _wake(wakers: Iterable[Waker]) -> None:
    for waker in wakers:
        waker.set()
