"""RELAY_ORPHAN_TIMEOUT: cancel what nobody watches any more, counting every worker's viewers.

The table of unfinished predictions kept here (whenever the queue, the compute
budget or the orphan timeout is on) is also what the admitter follows to their
end, watched or not, so that their ends free queue slots and count their seconds.

For each unfinished prediction, every process notes in the store, each tick,
`seen:<id>` = now while it has at least one subscriber for that id (the keys
expire, so a dead worker stops counting). Opening a stream marks the id as seen
too, so a stream shorter than a tick still counts as opened. The admitter then
cancels upstream (or drops from the queue) an id that was seen once and not for
RELAY_ORPHAN_TIMEOUT seconds, and has no subscriber here. An id whose stream
was never opened has no `seen` key and is never canceled: a client that starts
predictions and reads them later (or through webhooks) keeps them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from ..errors import RelayError
from ..hub import Hub
from .store import Store

__all__ = ["Orphans"]

log = logging.getLogger(__name__)

TRACKED = "unfinished"  # table: the client ids (Relay's or Replicate's) of unfinished predictions


class Orphans:
    def __init__(self, store: Store, hub: Hub, timeout: float | None,
                 cancel: Callable[[str], None], follow: bool) -> None:
        self._store = store
        self._hub = hub
        self.timeout = timeout
        self._cancel = cancel
        # Keep the list of unfinished predictions (also for the queue's slots and compute seconds).
        self.following = follow or timeout is not None

    def track(self, client_id: str) -> None:
        if self.following:
            self._store.table_set(TRACKED, client_id, "1")

    def untrack(self, client_id: str) -> None:
        if self.following:
            self._store.table_pop(TRACKED, client_id)

    def opened(self, client_id: str) -> None:
        if self.timeout is not None:
            self._mark(client_id, time.time())

    def _mark(self, client_id: str, now: float) -> None:
        assert self.timeout is not None
        self._store.put(f"seen:{client_id}", repr(now), self.timeout + 3600)

    def tracked(self) -> Iterable[str]:
        return self._store.table_all(TRACKED).keys() if self.following else ()

    def follow_all(self, ensure: Callable[[str], None]) -> None:
        """The admitter: keep a watcher on every unfinished prediction, watched or not, to its end."""
        for client_id in list(self.tracked()):
            if self._hub.is_done(client_id):
                self.untrack(client_id)
            else:
                ensure(client_id)

    def refresh(self) -> None:
        """Every process: note the ids its subscribers follow right now."""
        if self.timeout is None:
            return
        now = time.time()
        for client_id in self.tracked():
            if self._hub.subscriber_count(client_id) > 0:
                self._mark(client_id, now)

    def sweep(self) -> None:
        """The admitter: cancel what has gone unwatched for the timeout."""
        if self.timeout is None:
            return
        now = time.time()
        for client_id in list(self.tracked()):
            if self._hub.is_done(client_id):
                self.untrack(client_id)
                continue
            seen = self._store.get(f"seen:{client_id}")
            if seen is None or self._hub.subscriber_count(client_id) > 0:
                continue
            if now - float(seen) < self.timeout:
                continue
            if not self._store.claim(f"orphaned:{client_id}", "1", 3600):
                continue
            log.info("nobody has watched %s for %.0f s: canceling it", client_id, now - float(seen))
            try:
                self._cancel(client_id)
            except RelayError as error:
                log.warning("could not cancel orphaned %s: %s", client_id, error.message)
                self._store.delete(f"orphaned:{client_id}")
                continue
            self.untrack(client_id)
