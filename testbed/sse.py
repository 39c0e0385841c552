"""Reading Relay's streams in tests with an independent SSE client (httpx-sse)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import connect_sse


@dataclass
class Event:
    kind: str
    id: str
    data: dict[str, Any]


def follow(client: httpx.Client, url: str, *, last_event_id: str | None = None,
           limit: int | None = None, timeout: float = 30) -> list[Event]:
    """Events of one connection until the server ends it (or `limit` events were read)."""
    return list(iter_events(client, url, last_event_id=last_event_id, limit=limit, timeout=timeout))


def iter_events(client: httpx.Client, url: str, *, last_event_id: str | None = None,
                limit: int | None = None, timeout: float = 30) -> Iterator[Event]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    count = 0
    with connect_sse(client, "GET", url, headers=headers, timeout=timeout) as source:
        source.response.raise_for_status()
        for sse in source.iter_sse():
            yield Event(sse.event, sse.id, json.loads(sse.data))
            count += 1
            if limit is not None and count >= limit:
                return


def snapshots(events: list[Event]) -> list[dict[str, Any]]:
    return [e.data for e in events if e.kind == "message"]


def log_of(events: list[Event]) -> str:
    """A prediction's log as a client rebuilds it: a snapshot's text from its `logs_offset`
    (the whole log when that is 0), then each `event: logs` delta at its offset. A delta
    at any other offset than the log's length is an error the test should see."""
    log, start = "", 0
    for event in events:
        if event.kind == "message" and event.data.get("logs") is not None:
            start, log = int(event.data.get("logs_offset") or 0), event.data["logs"]
        elif event.kind == "logs":
            assert event.data["offset"] == start + len(log), (event.data["offset"], start + len(log))
            log += event.data["text"]
    return log


@contextmanager
def held_open(client: httpx.Client, url: str, **headers: str) -> Iterator[httpx.Response]:
    """A stream held open (its first bytes read, when it answered 200), closed on exit."""
    with client.stream("GET", url, headers=headers) as answer:
        if answer.status_code == 200:
            next(answer.iter_bytes())
        yield answer
