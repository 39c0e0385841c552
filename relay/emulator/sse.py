"""Replicate's server-sent event stream for the text model (`urls.stream`).

Events are derived from the prediction's state: one `output` per token, then
`error` (failed) and `done`. Event number n gets the id `<created>:<n>`, so
a client that reconnects with `Last-Event-ID` resumes right after the last
event it saw. The generator re-reads the record a few times a second, so a
cancel made by any process ends the stream with `done {"reason": "canceled"}`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator

from .models import State
from .timeline import TERMINAL

IDLE_TIMEOUT = 30.0  # Replicate ends a silent stream after this long
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
RECHECK = 0.25  # how often to look for a cancel while waiting for the next token

# The state now and when it will next change by itself (None when it will not),
# or None if the prediction disappeared.
Observe = Callable[[], "tuple[State, float | None] | None"]


def format_event(event: str, event_id: str, data: str) -> str:
    lines = [f"event: {event}", f"id: {event_id}"]
    # SSE ends a line at CR, LF or CRLF: each piece needs its own data: line.
    lines += [f"data: {line}" for line in _LINE_BREAK.split(data)]
    return "\n".join(lines) + "\n\n"


def events_for(state: State) -> list[tuple[str, str]]:
    """Every (event, data) pair the stream has shown by this state, in order."""
    events = [("output", str(token)) for token in (state.output or [])]
    if state.status == "succeeded":
        events.append(("done", "{}"))
    elif state.status == "failed":
        events.append(("error", json.dumps({"detail": state.error})))
        events.append(("done", json.dumps({"reason": "error"})))
    elif state.status == "canceled":
        events.append(("done", json.dumps({"reason": "canceled"})))
    return events


def parse_last_event_id(value: str | None) -> int:
    """The number of the last event a client saw, or -1 to start over."""
    if not value:
        return -1
    _, _, number = value.rpartition(":")
    return int(number) if number.isdigit() else -1


def stream(observe: Observe, created_at: float, last_seen: int = -1) -> Iterator[str]:
    prefix = int(created_at)
    sent = last_seen + 1
    quiet_since = time.monotonic()
    yield ": connected\n\n"  # flush headers now, even while the model boots
    while True:
        observed = observe()
        if observed is None:
            return
        state, next_change = observed
        events = events_for(state)
        while sent < len(events):
            event, data = events[sent]
            yield format_event(event, f"{prefix}:{sent}", data)
            sent += 1
            quiet_since = time.monotonic()
        if state.status in TERMINAL:
            return
        if time.monotonic() - quiet_since >= IDLE_TIMEOUT:
            yield ":408\n\n"
            return
        wait = RECHECK
        if next_change is not None:
            wait = min(wait, max(0.005, next_change - time.time()))
        time.sleep(wait)
