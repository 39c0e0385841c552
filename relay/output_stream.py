"""Reading a model's output stream (Replicate's `urls.stream`) server-side, with takeover.

Language models stream their output as SSE: `output` events carry text
chunks, `error` and `done` end it. Relay reads that stream with the account's
token (the URL never reaches a browser) and republishes each chunk as an
`output` event; `done` and `error` make the watcher poll at once for the final
snapshot, which stays authoritative.

Across processes exactly one reads a given stream (two would repeat every
chunk): the holder of the prediction's `output-stream` lease, as with the
watcher (coordination.py). A process that is asked to read while another holds
the lease stands by, trying the lease every half lease time while the
prediction runs and someone here watches it; if the reader dies its lease
lapses and a stand-by takes over. The reader notes the id of each event it
republished beside the lease, so the one taking over resumes from there with
`Last-Event-ID`: no chunk is lost or sent twice.

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

from .coordination import Coordination, LocalCoordination
from .errors import HubUnavailable
from .hub import Hub

__all__ = ["OutputStreams"]

log = logging.getLogger(__name__)

LEASE = "output-stream"


class OutputStreams:
    """At most one reader per prediction across processes, for predictions that offer `urls.stream`."""

    def __init__(self, hub: Hub, client: Callable[[], httpx.Client],
                 on_end: Callable[[str], None], max_attempts: int = 5,
                 coordination: Coordination | None = None, standby_for: float = 30.0) -> None:
        self._hub = hub
        self._coordination: Coordination = coordination or LocalCoordination()
        self._client = client
        self._on_end = on_end
        self._max_attempts = max_attempts
        self._standby_for = standby_for
        self._running: set[str] = set()
        self._lock = threading.Lock()
        self.closing = False
        self.takeovers = 0

    def running(self) -> int:
        return len(self._running)

    def ensure(self, prediction_id: str, url: str) -> None:
        """Read the prediction's output stream here, or stand by to take it over."""
        with self._lock:
            if prediction_id in self._running or self.closing:
                return
            self._running.add(prediction_id)
        threading.Thread(target=self._follow, args=(prediction_id, url), daemon=True,
                         name=f"stream-{prediction_id}").start()

    def _follow(self, prediction_id: str, url: str) -> None:
        holding = False
        try:
            holding = self._wait_for_lease(prediction_id)
            if holding:
                self._read_holding(prediction_id, url)
        except Exception:
            log.exception("reading the output stream of %s failed", prediction_id)
        finally:
            with self._lock:
                self._running.discard(prediction_id)
            if holding:
                self._on_end(prediction_id)

    def _wait_for_lease(self, prediction_id: str) -> bool:
        """True once this process holds the lease; False when there is no reason to wait any more."""
        first = True
        unwatched_since: float | None = None
        while not self.closing and not self._hub.is_done(prediction_id):
            if self._coordination.hold(LEASE, prediction_id):
                if not first:
                    self.takeovers += 1
                    log.info("took over reading the output stream of %s", prediction_id)
                return True
            first = False
            if self._hub.subscriber_count(prediction_id):
                unwatched_since = None
            elif unwatched_since is None:
                unwatched_since = time.monotonic()
            elif time.monotonic() - unwatched_since > self._standby_for:
                return False
            time.sleep(self._coordination.lease_seconds / 2)
        return False

    def _read_holding(self, prediction_id: str, url: str) -> None:
        reading = threading.Event()
        threading.Thread(target=self._keep_lease, args=(prediction_id, reading), daemon=True).start()
        finished = False
        try:
            finished = self._read(prediction_id, url)
        finally:
            reading.set()
            if finished:
                self._coordination.forget(LEASE, prediction_id)
            self._coordination.release(LEASE, prediction_id)

    def _keep_lease(self, prediction_id: str, finished: threading.Event) -> None:
        while not finished.wait(self._coordination.lease_seconds / 3):
            self._coordination.hold(LEASE, prediction_id)

    def _read(self, prediction_id: str, url: str) -> bool:
        """Republish the stream's chunks; True when it ended (done or error), False if given up."""
        last_id = self._coordination.recall(LEASE, prediction_id)
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
                        if event.event == "output":
                            failures = 0
                            chunk = {"id": prediction_id, "text": event.data}
                            try:
                                self._hub.publish(prediction_id, "output", chunk)
                            except HubUnavailable:
                                pass  # a delta only; the next snapshot carries the whole output
                        elif event.event in ("done", "error"):
                            return True
                        if event.id:
                            last_id = event.id
                            self._coordination.remember(LEASE, prediction_id, last_id)
            except (httpx.HTTPError, SSEError) as error:
                log.debug("output stream of %s dropped: %s", prediction_id, type(error).__name__)
            failures += 1
            time.sleep(min(4.0, 0.25 * 2**failures))
        if failures >= self._max_attempts:
            log.warning("gave up on the output stream of %s; polling carries on", prediction_id)
        return False
