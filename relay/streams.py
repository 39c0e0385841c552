"""The SSE response body: a generator per connection, following one or several predictions.

The generator yields at once (a WSGI server sends nothing before the first
chunk), replays what the subscriber missed, then sleeps on its `Waker` until an
event arrives or a heartbeat is due. It ends after `done` (of every prediction
it follows), after RELAY_STREAM_MAX_AGE, or at worker shutdown; its `finally`
releases the subscription, which also runs when the client has gone and the
next write fails.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from .hub import Hub, HubEvent, Key, Replay, Waker
from .metrics import Metrics
from .sse import encode_comment, encode_id, encode_retry

__all__ = ["StreamLimits", "compose_id", "event_stream", "split_id"]

RETRY_MS = 2000
HEARTBEAT = encode_comment("hb")


@dataclass(frozen=True, slots=True)
class StreamLimits:
    heartbeat: float
    max_age: float


def compose_id(positions: Sequence[str]) -> str:
    """A multiplexed stream's event id: each prediction's last event id, in `watch` order."""
    return ",".join(positions)


def split_id(text: str | None, count: int) -> list[str | None]:
    """Per-prediction ids from a multiplexed id; Nones when it does not fit this stream."""
    if not text:
        return [None] * count
    parts = text.split(",")
    if len(parts) != count:
        return [None] * count
    return [part or None for part in parts]


def event_stream(hub: Hub, prediction_ids: Sequence[str], replays: Sequence[Replay],
                 limits: StreamLimits, *, multiplexed: bool,
                 positions: Sequence[str | None] | None = None,
                 on_close: Callable[[], None] | None = None,
                 metrics: Metrics | None = None) -> Iterator[bytes]:
    """The bytes of one SSE connection. `replays[i]` is where prediction i resumes."""
    waker = Waker()
    hub.attach(prediction_ids, waker)
    # The replays were read before this attach: an event published in between woke nobody, and
    # if it was the last one (`done`) no later event would. So the first wait looks once.
    waker.set()
    if metrics is not None:
        metrics.open_streams.inc()
    try:
        # One first write: the retry hint and the replay go out together (a reconnect storm
        # pays one socket write and one chunk per stream, not two; bench/open_burst.py).
        follower = _Follower(hub, prediction_ids, replays, multiplexed, positions)
        yield _PREAMBLE + follower.render_replay()
        follower.report(metrics)
        opened = last_write = time.monotonic()
        while follower.active and not hub.closing:
            now = time.monotonic()
            if now - opened >= limits.max_age:
                return
            wait = min(limits.heartbeat - (now - last_write), limits.max_age - (now - opened))
            if wait <= 0 or not waker.wait(wait):
                if time.monotonic() - last_write >= limits.heartbeat:
                    yield HEARTBEAT
                    last_write = time.monotonic()
                continue
            chunk = follower.render_new()
            if chunk:
                yield chunk
                follower.report(metrics)
                last_write = time.monotonic()
    finally:
        hub.detach(prediction_ids, waker)
        if metrics is not None:
            metrics.open_streams.dec()
        if on_close is not None:
            on_close()


_PREAMBLE = encode_retry(RETRY_MS) + encode_comment("relay")


class _Follower:
    """Cursors of one connection and the rendering of its events."""

    def __init__(self, hub: Hub, prediction_ids: Sequence[str], replays: Sequence[Replay],
                 multiplexed: bool, positions: Sequence[str | None] | None) -> None:
        self._hub = hub
        self._ids = list(prediction_ids)
        self._replays = list(replays)
        self._multiplexed = multiplexed
        self._cursors: list[Key | None] = [r.cursor for r in replays]
        self._positions: list[str] = [p or "" for p in (positions or [None] * len(self._ids))]
        self._active = [not r.finished for r in replays]
        self._sent: dict[str, int] = {}

    @property
    def active(self) -> bool:
        return any(self._active)

    def render_replay(self) -> bytes:
        parts: list[bytes] = []
        for index, replay in enumerate(self._replays):
            if self._active[index]:
                self._render(index, replay.events, parts)
        self._replays = []
        return b"".join(parts)

    def render_new(self) -> bytes:
        parts: list[bytes] = []
        for index, prediction_id in enumerate(self._ids):
            if not self._active[index]:
                continue
            events, cursor = self._hub.events_after(prediction_id, self._cursors[index])
            self._cursors[index] = cursor
            self._render(index, events, parts)
        return b"".join(parts)

    def report(self, metrics: Metrics | None) -> None:
        """Count what was just written (once per chunk, not per event, to keep fan-out cheap)."""
        if metrics is not None:
            for kind, count in self._sent.items():
                metrics.count_sent(kind, count)
        self._sent.clear()

    def _render(self, index: int, events: list[HubEvent], parts: list[bytes]) -> None:
        for event in events:
            self._sent[event.kind] = self._sent.get(event.kind, 0) + 1
            if self._multiplexed:
                self._positions[index] = event.id
                parts.append(encode_id(compose_id(self._positions)) + event.body)
            else:
                parts.append(event.wire)
            if event.kind == "done":
                self._active[index] = False
                return
