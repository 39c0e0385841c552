"""The hub's vocabulary: event ids, events encoded once, wake-up flags, replays, the log tail.

Both hubs (relay/hub.py, relay/redis_hub.py) and the streams share these; the
JSON of every event is made by `encode_data` and its SSE bytes by relay/sse.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .snapshot import TERMINAL_STATUSES  # re-exported: defined with the other statuses
from .sse import encode_fields, encode_id

__all__ = ["LOG_FIELDS", "TERMINAL_STATUSES", "EventKind", "HubEvent", "Key", "Replay", "Waker",
           "encode_data", "format_key", "log_tail", "parse_event_id"]

LOG_FIELDS = ("logs", "logs_offset", "logs_length")
EventKind = Literal["snapshot", "logs", "output", "upstream", "done"]
Key = tuple[int, int]


def parse_event_id(text: str | None) -> Key | None:
    """The ordering key of an event id, or None for anything Relay never issues."""
    if not text or len(text) > 40:
        return None
    ms, sep, seq = text.partition("-")
    if not sep or not ms.isdigit() or not seq.isdigit() or not ms.isascii() or not seq.isascii():
        return None
    return int(ms), int(seq)


def format_key(key: Key) -> str:
    return f"{key[0]}-{key[1]}"


def encode_data(data: Mapping[str, Any]) -> str:
    """An event's JSON, the one encoding both hubs use (no NaN or Infinity: not JSON)."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def log_tail(log: str, limit: int) -> tuple[int, str]:
    """(offset, text): at most `limit` UTF-8 bytes of the log's end, starting at a line start
    (or at the limit when no line starts within it). Offsets count code points."""
    window = log[-limit:] if len(log) > limit else log
    raw = window.encode("utf-8", "surrogatepass")
    if len(raw) > limit:
        raw = raw[-limit:]
        start = 0
        while start < len(raw) and raw[start] & 0xC0 == 0x80:
            start += 1  # never begin inside a character
        window = raw[start:].decode("utf-8", "surrogatepass")
    offset = len(log) - len(window)
    if offset > 0 and log[offset - 1] not in "\r\n":
        cuts = [i for i in (window.find("\n"), window.find("\r")) if i >= 0]
        if cuts:
            cut = min(cuts) + 1
            if window[cut - 1] == "\r" and window[cut:cut + 1] == "\n":
                cut += 1
            window = window[cut:]
    return len(log) - len(window), window


@dataclass(frozen=True, slots=True)
class HubEvent:
    """One published event: its id, kind, JSON data and its SSE bytes, encoded once."""

    id: str
    key: Key
    kind: EventKind
    data: Mapping[str, Any]
    wire: bytes  # `id:` line + `event:`/`data:` lines, for single-prediction streams
    body_start: int

    @classmethod
    def build(cls, key: Key, kind: EventKind, data: Mapping[str, Any]) -> HubEvent:
        event_id = format_key(key)
        text = encode_data(data)
        event = None if kind == "snapshot" else kind
        id_line = encode_id(event_id)
        if kind == "logs":  # the text lives in the bytes only: a history of deltas holds each once
            data = {"id": data["id"], "offset": data["offset"], "end": data["offset"] + len(data["text"])}
        return cls(event_id, key, kind, data, id_line + encode_fields(text, event=event), len(id_line))

    def delta_text(self) -> str:
        """A `logs` event's text, read back from its bytes (one `data:` line of JSON)."""
        payload = json.loads(bytes(self.body).split(b"data: ", 1)[1])
        return str(payload["text"])

    @property
    def body(self) -> memoryview:
        """The event without its `id:` line, for streams that write their own (shares the bytes)."""
        return memoryview(self.wire)[self.body_start:]

    @property
    def size(self) -> int:
        return len(self.wire)


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
