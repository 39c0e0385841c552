"""The one path by which prediction states reach the hub, whatever brought them.

Create answers, polls, webhooks and cancel answers all pass through `Feed.apply`,
so the ordering rules live in one place: nothing is applied after a terminal
state (the hub refuses it), nothing older than the state held replaces it, and
the same state arriving by two paths makes one event (the hub dedupes it).
The hub is given the whole log and sends only its growth (`logs` deltas);
progress is read incrementally, one reader per prediction (relay/progress.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any

from .hub import Hub
from .progress import ProgressTracker
from .snapshot import TERMINAL_STATUSES, BadPrediction, is_older, snapshot_from_prediction

__all__ = ["Applied", "Feed"]

log = logging.getLogger(__name__)


class Applied(Enum):
    NEW = "new"          # published: subscribers get it
    SAME = "same"        # the state already held (or after done): nothing to send
    STALE = "stale"      # older than the state held: ignored
    INVALID = "invalid"  # not a prediction


class Feed:
    def __init__(self, hub: Hub, on_stream_url: Callable[[str, str], None] | None = None,
                 on_finished: Callable[[str, str], None] | None = None) -> None:
        self._hub = hub
        self._on_stream_url = on_stream_url
        self._on_finished = on_finished
        self._progress = ProgressTracker()
        # Optional hooks (relay/runs.py): `decorate` may amend a state before it is published
        # (kept outputs, `estimate`); `observe` sees each state that was published.
        self.decorate: Callable[[dict[str, Any], Mapping[str, Any], Mapping[str, Any] | None],
                                dict[str, Any]] | None = None
        self.observe: Callable[[Mapping[str, Any]], None] | None = None

    def apply(self, prediction: Mapping[str, Any]) -> Applied:
        """Publish the prediction's state if it is new; publish `done` after a terminal one."""
        try:
            snapshot = snapshot_from_prediction(prediction, self._progress.read)
        except BadPrediction as error:
            log.warning("ignoring an upstream answer that is not a prediction: %s", error)
            return Applied.INVALID
        prediction_id: str = snapshot["id"]
        held = self._hub.latest(prediction_id)
        if held is not None and is_older(snapshot, held):
            return Applied.STALE
        if self.decorate is not None:
            snapshot = self.decorate(snapshot, prediction, held)
        changed = self._hub.publish_state(prediction_id, snapshot)
        if changed and self.observe is not None:
            self.observe(snapshot)
        status = snapshot["status"]
        if status in TERMINAL_STATUSES:
            self._progress.forget(prediction_id)
            done = self._hub.publish(prediction_id, "done", {"id": prediction_id, "status": status})
            if done is not None and self._on_finished is not None:
                self._on_finished(prediction_id, status)
        elif self._on_stream_url is not None:
            urls = prediction.get("urls")
            stream_url = urls.get("stream") if isinstance(urls, dict) else None
            if isinstance(stream_url, str) and stream_url.startswith(("http://", "https://")):
                self._on_stream_url(prediction_id, stream_url)
        return Applied.NEW if changed else Applied.SAME
