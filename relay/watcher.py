"""One upstream follower per prediction, shared by all its subscribers.

A watcher polls the prediction through `Upstream`, passes every answer to the
Feed (which publishes it if it is new), and ends after the terminal state, or
when nobody anywhere has watched for `watcher_idle_timeout` seconds; the next
subscriber starts it again.

Across processes (Redis), every process with subscribers runs a watcher loop,
but only the holder of the prediction's lease polls; the others stand by,
mark the prediction as watched, and take the lease over if its holder dies.

Upstream failures are retried with capped, jittered exponential backoff and
reported as `upstream` events: they never turn into a failed prediction, since
only Replicate decides a prediction's status. Every poll draws from the shared
upstream budget, handed out round robin over the predictions waiting for it
(coordination.FairTurns); a 429 pauses every process's polling together.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

from .coordination import Coordination, FairTurns, HubUnavailable, LocalCoordination
from .errors import NotFound, RelayError, UpstreamThrottled, UpstreamUnavailable
from .feed import Applied, Feed
from .hub import Hub
from .metrics import Metrics
from .snapshot import is_prediction
from .upstream import Upstream

__all__ = ["PollPolicy", "Watchers"]

log = logging.getLogger(__name__)

LEASE = "watch"


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """How often to poll: fast while things change, slower while they don't."""

    base: float = 1.0
    slowest_factor: float = 5.0
    backoff_cap: float = 15.0
    jitter: float = 0.1

    def next_poll(self, unchanged_polls: int, watched: bool) -> float:
        factor = min(self.slowest_factor, 1.5 ** max(0, unchanged_polls - 1))
        if not watched:
            factor = self.slowest_factor
        return self._jittered(self.base * factor)

    def retry_after_failure(self, failures: int, hint: float | None) -> float:
        delay = min(self.backoff_cap, self.base * 2 ** (failures - 1))
        return max(self._jittered(delay), hint or 0.0)

    def _jittered(self, seconds: float) -> float:
        return seconds * random.uniform(1 - self.jitter, 1 + self.jitter)


class Watchers:
    """Starts at most one watcher thread (a greenlet under gevent) per prediction in this process."""

    def __init__(self, hub: Hub, feed: Feed, upstream: Upstream, policy: PollPolicy,
                 idle_timeout: float, reconcile_interval: float | None = None,
                 coordination: Coordination | None = None, metrics: Metrics | None = None) -> None:
        self._metrics = metrics
        self._hub = hub
        self._feed = feed
        self._upstream = upstream
        self._policy = policy
        self._idle_timeout = idle_timeout
        # With webhooks on, polling is a safety net: once pushes arrive for a
        # prediction, poll it only after this long without one.
        self._reconcile = reconcile_interval
        self._coordination: Coordination = coordination or LocalCoordination()
        self._turns = FairTurns(self._coordination.take_budget)
        self._running: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._closing = False
        self.degraded_since: float | None = None
        self.upstream_gets = 0
        self.takeovers = 0

    def running(self) -> int:
        return len(self._running)

    def ensure(self, prediction_id: str) -> None:
        """Start following the prediction unless already followed here or finished."""
        if self._closing or self._hub.is_done(prediction_id):
            return  # a finished prediction needs no thread (nor, with Redis, a lease round trip)
        with self._lock:
            if prediction_id in self._running:
                return
            wake = self._running[prediction_id] = threading.Event()
        thread = threading.Thread(target=self._follow, args=(prediction_id, wake),
                                  name=f"watch-{prediction_id}", daemon=True)
        thread.start()

    def poke(self, prediction_id: str) -> None:
        """Poll now rather than at the next tick (after a cancel, say)."""
        wake = self._running.get(prediction_id)
        if wake is not None:
            wake.set()

    def note_push(self, prediction_id: str) -> None:
        """A webhook brought this prediction's state: polls can wait."""
        if self._reconcile is not None:
            self._coordination.note_push(prediction_id, self._reconcile)

    def close(self) -> None:
        self._closing = True
        self._turns.wake()
        for wake in list(self._running.values()):
            wake.set()

    def _follow(self, prediction_id: str, wake: threading.Event) -> None:
        if self._metrics is not None:
            self._metrics.watchers.inc()
        try:
            self._loop(prediction_id, wake)
        except Exception:  # a watcher must never die silently with subscribers waiting
            log.exception("watcher for %s failed", prediction_id)
        finally:
            self._turns.leave(prediction_id)
            with self._lock:
                self._running.pop(prediction_id, None)
            self._coordination.release(LEASE, prediction_id)
            if self._metrics is not None:
                self._metrics.watchers.dec()

    def _idle(self, prediction_id: str, started: float) -> bool:
        if time.monotonic() - started <= self._idle_timeout:
            return False
        if self._hub.idle_for(prediction_id) <= self._idle_timeout:
            return False
        return not self._coordination.watched_elsewhere(prediction_id)

    def _wait(self, prediction_id: str, wake: threading.Event, seconds: float, holding: bool) -> None:
        """Sleep (woken early by poke/close), renewing the lease so it never lapses while we live."""
        deadline = time.monotonic() + seconds
        step = self._coordination.lease_seconds / 3
        while not self._closing:
            left = deadline - time.monotonic()
            if left <= 0 or wake.wait(min(left, step)):
                break
            if holding:
                self._coordination.hold(LEASE, prediction_id)
            if self._hub.subscriber_count(prediction_id):
                self._coordination.mark_watched(prediction_id)
        wake.clear()

    def _loop(self, prediction_id: str, wake: threading.Event) -> None:
        unchanged = 0
        failures = 0
        started = time.monotonic()
        was_standby = False
        while not self._closing:
            if self._hub.is_done(prediction_id) or self._idle(prediction_id, started):
                return
            if self._hub.subscriber_count(prediction_id):
                self._coordination.mark_watched(prediction_id)
            if not self._coordination.hold(LEASE, prediction_id):
                was_standby = True  # another process follows it; stand by in case it dies
                self._wait(prediction_id, wake, self._coordination.lease_seconds / 2, holding=False)
                continue
            if was_standby:
                was_standby = False
                self.takeovers += 1
                log.info("took over following %s upstream", prediction_id)
            quiet = self._coordination.quiet_for(prediction_id) if self._reconcile is not None else 0.0
            if quiet > 0:
                self._wait(prediction_id, wake, quiet, holding=True)
                continue
            # Our turn of the shared budget, round robin; while queued, go round again to renew the lease.
            if not self._turns.take(prediction_id, self._coordination.lease_seconds / 3, lambda: self._closing):
                continue
            try:
                self.upstream_gets += 1
                prediction = self._upstream.get(prediction_id)
                if failures and is_prediction(prediction):
                    # Say so before applying: a terminal state ends the stream, and
                    # nothing published after `done` reaches anyone.
                    failures = 0
                    self._recovered(prediction_id)
                applied = self._apply(prediction)
            except NotFound:
                log.warning("prediction %s is unknown upstream; stopping its watcher", prediction_id)
                return
            except HubUnavailable:
                failures += 1
                self._wait(prediction_id, wake, self._policy.retry_after_failure(failures, None), holding=True)
                continue
            except RelayError as error:
                failures += 1
                hint = error.retry_after if isinstance(error, UpstreamUnavailable) else None
                delay = self._policy.retry_after_failure(failures, hint)
                if isinstance(error, UpstreamThrottled) and hint is not None:
                    self._coordination.pause_upstream(hint)
                self._degraded(prediction_id, error.message, delay)
                if self._metrics is not None:
                    self._metrics.upstream_backoff.inc(delay)
                self._wait(prediction_id, wake, delay, holding=True)
                continue
            if applied is Applied.INVALID:
                failures += 1
                delay = self._policy.retry_after_failure(failures, None)
                self._degraded(prediction_id, "Replicate answered with something that is not a prediction.", delay)
                self._wait(prediction_id, wake, delay, holding=True)
                continue
            if self._hub.is_done(prediction_id):
                return
            unchanged = 0 if applied is Applied.NEW else unchanged + 1
            watched = self._hub.subscriber_count(prediction_id) > 0 or \
                self._coordination.watched_elsewhere(prediction_id)
            self._wait(prediction_id, wake, self._policy.next_poll(unchanged, watched), holding=True)

    def _apply(self, prediction: dict[str, Any]) -> Applied:
        """Feed the answer on; one answer that cannot be published must never end the watcher."""
        try:
            return self._feed.apply(prediction)
        except HubUnavailable:
            raise
        except Exception:
            log.exception("could not publish an upstream answer; treating it as not a prediction")
            return Applied.INVALID

    def _degraded(self, prediction_id: str, message: str, retry_in: float) -> None:
        if self.degraded_since is None:
            self.degraded_since = time.time()
            log.warning("upstream degraded: %s", message)
        try:
            self._hub.publish(prediction_id, "upstream", {
                "id": prediction_id, "state": "degraded", "error": message, "retry_in": round(retry_in, 1),
            })
        except HubUnavailable:
            pass

    def _recovered(self, prediction_id: str) -> None:
        if self.degraded_since is not None:
            log.info("upstream recovered after %.1f s", time.time() - self.degraded_since)
            self.degraded_since = None
        try:
            self._hub.publish(prediction_id, "upstream", {"id": prediction_id, "state": "ok"})
        except HubUnavailable:
            pass
