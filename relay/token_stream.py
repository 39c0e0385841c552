"""Reading Replicate's own output stream (`urls.stream`) server-side.

Language models stream their output as SSE: `output` events carry text
chunks, `error` and `done` end it. Relay reads that stream with the account's
token (the URL never reaches a browser) and republishes each chunk as an
`output` event; `done` and `error` make the watcher poll at once for the final
snapshot, which stays authoritative.

The parsing is httpx-sse's: a small, well-kept SSE decoder that, unlike the
`replicate` client's, neither raises on event names it doesn't know nor hides
a dropped connection. A drop is resumed with `Last-Event-ID`; after a few
failed attempts the reader gives up and polling alone carries on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import httpx
from httpx_sse import SSEError, connect_sse

from .coordination import Coordination, HubUnavailable, LocalCoordination
from .hub import Hub

__all__ = ["TokenStreams"]

log = logging.getLogger(__name__)

LEASE = "output-stream"


class TokenStreams:
    """At most one reader per prediction, for predictions that offer `urls.stream`."""

    def __init__(self, hub: Hub, client: Callable[[], httpx.Client],
                 on_end: Callable[[str], None], max_attempts: int = 5,
                 coordination: Coordination | None = None) -> None:
        self._hub = hub
        self._coordination: Coordination = coordination or LocalCoordination()
        self._client = client
        self._on_end = on_end
        self._max_attempts = max_attempts
        self._running: set[str] = set()
        self._lock = threading.Lock()
        self.closing = False

    def running(self) -> int:
        return len(self._running)

    def ensure(self, prediction_id: str, url: str) -> None:
        with self._lock:
            if prediction_id in self._running or self.closing:
                return
            # Across processes, exactly one reads a given stream (or outputs would repeat).
            if not self._coordination.hold(LEASE, prediction_id):
                return
            self._running.add(prediction_id)
        threading.Thread(target=self._follow, args=(prediction_id, url), daemon=True,
                         name=f"stream-{prediction_id}").start()

    def _follow(self, prediction_id: str, url: str) -> None:
        reading = threading.Event()
        threading.Thread(target=self._keep_lease, args=(prediction_id, reading), daemon=True).start()
        try:
            self._read(prediction_id, url)
        except Exception:
            log.exception("reading the output stream of %s failed", prediction_id)
        finally:
            reading.set()
            self._coordination.release(LEASE, prediction_id)
            with self._lock:
                self._running.discard(prediction_id)
            self._on_end(prediction_id)

    def _keep_lease(self, prediction_id: str, finished: threading.Event) -> None:
        while not finished.wait(self._coordination.lease_seconds / 3):
            self._coordination.hold(LEASE, prediction_id)

    def _read(self, prediction_id: str, url: str) -> None:
        last_id: str | None = None
        failures = 0
        while failures < self._max_attempts and not self.closing and not self._hub.is_done(prediction_id):
            headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
            if last_id:
                headers["Last-Event-ID"] = last_id
            try:
                with connect_sse(self._client(), "GET", url, headers=headers,
                                 timeout=httpx.Timeout(10.0, read=60.0)) as source:
                    events = source.iter_sse() if source.response.status_code == 200 else iter(())
                    for event in events:
                        if event.id:
                            last_id = event.id
                        if event.event == "output":
                            failures = 0
                            chunk = {"id": prediction_id, "text": event.data}
                            try:
                                self._hub.publish(prediction_id, "output", chunk)
                            except HubUnavailable:
                                pass  # a delta only; the next snapshot carries the whole output
                        elif event.event in ("done", "error"):
                            return
            except (httpx.HTTPError, SSEError) as error:
                log.debug("output stream of %s dropped: %s", prediction_id, type(error).__name__)
            failures += 1
            time.sleep(min(4.0, 0.25 * 2**failures))
        if failures >= self._max_attempts:
            log.warning("gave up on the output stream of %s; polling carries on", prediction_id)
