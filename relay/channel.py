"""One prediction's channel: its state, its log once, and a history bounded by count and bytes.

The history is a contiguous run of the latest events (oldest dropped first), so a
resume from an id in it is served exactly. What a new subscriber needs is not in
the history but beside it: the latest snapshot, the log, the latest upstream
state and `done`, from which the "tail snapshot" is built: the state with the
log's last RELAY_LOG_TAIL_BYTES, under the id of the latest snapshot or `logs`
event (`position`), encoded once per position and shared by every connection.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .events import LOG_FIELDS, HubEvent, Key, Waker, log_tail

__all__ = ["Channel", "with_log"]


def with_log(snapshot: Mapping[str, Any], logs: str | None, offset: int | None, length: int) -> dict[str, Any]:
    """The snapshot's fields with the log fields as the wire carries them, in the `logs` place."""
    data: dict[str, Any] = {}
    for name, value in snapshot.items():
        if name == "logs":
            data["logs"] = logs
            if offset is not None:
                data["logs_offset"] = offset
            data["logs_length"] = length
        elif name not in LOG_FIELDS:
            data[name] = value
    if "logs" not in data:
        data["logs"] = logs
        if offset is not None:
            data["logs_offset"] = offset
        data["logs_length"] = length
    return data


@dataclass(slots=True, eq=False)
class Channel:
    history: deque[HubEvent] = field(default_factory=deque)
    snapshot: HubEvent | None = None
    core: dict[str, Any] | None = None  # the snapshot without its log fields: what a repeat compares
    log: str = ""
    log_stale: bool = False  # the log here may be behind (a Redis mirror after a rewrite or gap)
    upstream: HubEvent | None = None
    done: HubEvent | None = None
    last_key: Key = (0, 0)
    position: Key | None = None  # latest snapshot or `logs` event: what the tail snapshot stands for
    trimmed_through: Key | None = None
    history_bytes: int = 0
    tail: HubEvent | None = None
    wakers: set[Waker] = field(default_factory=set)
    last_active: float = field(default_factory=time.monotonic)

    @property
    def weight(self) -> int:
        """Bytes this channel holds (history, log, cached tail), for the process-wide bound."""
        return self.history_bytes + len(self.log) + (self.tail.size if self.tail is not None else 0)

    # -- what an event does to the channel ----------------------------------------
    def accepts(self, event_kind: str, data: Mapping[str, Any]) -> bool:
        """Whether an event changes anything: nothing after done, no state twice in a row."""
        if self.done is not None:
            return False
        if event_kind == "upstream":
            if self.upstream is None:
                return data.get("state") != "ok"
            return self.upstream.data != data
        return True

    def append(self, event: HubEvent, size_limit: int, bytes_limit: int) -> int:
        """Add an event; returns the change in the channel's weight."""
        before = self.weight
        if event.kind == "snapshot":
            self.snapshot = event
            self.core = {k: v for k, v in event.data.items() if k not in LOG_FIELDS}
            self.position, self.tail = event.key, None
        elif event.kind == "logs":
            self.position, self.tail = event.key, None
        elif event.kind == "upstream":
            self.upstream = event
        elif event.kind == "done":
            self.done = event
        self.history.append(event)
        self.history_bytes += event.size
        if event.key > self.last_key:
            self.last_key = event.key
        self.last_active = time.monotonic()
        while len(self.history) > size_limit or (self.history_bytes > bytes_limit and len(self.history) > 1):
            self._drop_oldest()
        return self.weight - before

    def apply_log(self, offset: int, text: str) -> int:
        """Apply a `logs` delta issued elsewhere; returns the weight change (marks a gap as stale)."""
        have = len(self.log)
        if offset > have:
            self.log_stale = True
            return 0
        if offset + len(text) > have:
            self.log += text[have - offset:]
        return len(self.log) - have

    def set_log(self, log: str) -> int:
        before = len(self.log)
        self.log, self.log_stale = log, False
        return len(log) - before

    def _drop_oldest(self) -> None:
        dropped = self.history.popleft()
        self.history_bytes -= dropped.size
        self.trimmed_through = dropped.key

    def shed(self, keep_after: Key | None) -> int:
        """Drop history up to `keep_after` (all of it when None); returns the weight change."""
        before = self.weight
        while self.history and (keep_after is None or self.history[0].key <= keep_after):
            self._drop_oldest()
        return self.weight - before

    def shed_to(self, count: int) -> int:
        """Keep only the latest `count` events of the history; returns the weight change."""
        before = self.weight
        while len(self.history) > count:
            self._drop_oldest()
        return self.weight - before

    # -- what a subscriber gets ------------------------------------------------------
    def knows(self, key: Key) -> bool:
        """True when a resume from `key` can be served exactly from here."""
        return key == self.position or any(event.key == key for event in self.history)

    def after(self, key: Key) -> list[HubEvent]:
        new: list[HubEvent] = []
        for event in reversed(self.history):
            if event.key <= key:
                break
            new.append(event)
        new.reverse()
        return new

    def tail_snapshot(self, tail_bytes: int) -> tuple[HubEvent, int]:
        """The state with the log's tail (built once per position); and the weight change."""
        assert self.snapshot is not None and self.position is not None
        if self.tail is not None and self.tail.key == self.position:
            return self.tail, 0
        before = self.weight
        offset, text = log_tail(self.log, tail_bytes)
        data = with_log(self.snapshot.data, text, offset, len(self.log))
        self.tail = HubEvent.build(self.position, "snapshot", data)
        return self.tail, self.weight - before

    def from_tail(self, tail_bytes: int) -> tuple[list[HubEvent], int]:
        """A new subscriber's first events: a degraded upstream state, the tail snapshot, what followed."""
        if self.snapshot is None or self.position is None:
            return [], 0
        position = self.position
        events: list[HubEvent] = []
        upstream = self.upstream
        if upstream is not None and upstream.key < position and upstream.data.get("state") != "ok":
            events.append(upstream)
        tail, grown = self.tail_snapshot(tail_bytes)
        events.append(tail)
        events.extend(self.after(position))
        return events, grown
