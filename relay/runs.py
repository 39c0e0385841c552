"""Runs: the records, kept outputs, estimates and retention of one app, wired to the feed.

Two hooks on `Feed` (the one path every prediction state takes) do the work:
- `decorate(snapshot, prediction, held)` runs before a state is published: it adds
  `estimate`, and for a success copies the file outputs (relay/keeper.py) and puts
  the kept URLs in the output, so the final snapshot, the record and every replay
  carry them;
- `observe(snapshot)` runs after a new state was published: it writes the record
  when the status changed (never for a log line).
`RelayService.create` writes the record first (visitor, model, input), and
`RelayService.ensure_known` asks `replay_final` before going upstream, so a finished
prediction the hub no longer holds (after a restart) streams from its record.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Settings
from .estimates import Estimator, same_state
from .hub import TERMINAL_STATUSES
from .keeper import Keeper
from .records import RunStore, engine_for, migrate
from .storage import open_storage

if TYPE_CHECKING:
    from .service import RelayService

__all__ = ["Runs"]

log = logging.getLogger(__name__)

_MAX_FOLLOWED = 10_000


class Runs:
    def __init__(self, settings: Settings, instance: Path, secret_key: str, service: RelayService) -> None:
        self.settings = settings
        self.service = service
        self.store = RunStore(engine_for(settings.database_url, instance))
        migrate(self.store.engine)
        self.estimator = Estimator(self.store.durations)
        self.keeper = Keeper(open_storage(settings.storage_url, instance), secret_key,
                             max_bytes=settings.max_kept_bytes,
                             emulator_base=lambda: service.upstream.base_url if settings.uses_emulator else None,
                             public_url=settings.public_url)
        self._models: dict[str, tuple[str | None, str | None]] = {}
        self._written: dict[str, str] = {}  # prediction id -> status last written
        self._lock = threading.Lock()
        self._retention: threading.Thread | None = None
        service.feed.decorate = self.decorate
        service.feed.observe = self.observe

    # -- the feed's hooks ------------------------------------------------------------
    def created(self, prediction: Mapping[str, Any], model: str | None, model_input: Any, visitor: str) -> None:
        prediction_id = str(prediction["id"])
        version = prediction.get("version")
        name = model or str(prediction.get("model") or version or "unknown")
        with self._lock:
            self._models[prediction_id] = (name, version if isinstance(version, str) else None)
            self._written[prediction_id] = str(prediction.get("status") or "starting")
            _bound(self._written, self._models)
        try:
            self.store.created(prediction, visitor, name, model_input)
        except Exception:  # created upstream already: the visitor gets the stream, the list misses it
            log.exception("could not record the creation of %s", prediction_id)

    def _model_of(self, prediction_id: str, prediction: Mapping[str, Any]) -> tuple[str | None, str | None]:
        with self._lock:
            known = self._models.get(prediction_id)
        if known is not None:
            return known
        model, version = prediction.get("model"), prediction.get("version")
        if not isinstance(model, str):
            row = self.store.get(prediction_id)
            model, version = (row["model"], row["version"]) if row else (None, None)
        pair = (model, version if isinstance(version, str) else None)
        if model is not None:
            with self._lock:
                self._models[prediction_id] = pair
        return pair

    def decorate(self, snapshot: dict[str, Any], prediction: Mapping[str, Any],
                 held: Mapping[str, Any] | None) -> dict[str, Any]:
        if same_state(snapshot, held):  # only the log moved: keep the estimate, so no new state
            assert held is not None
            return {**snapshot, "estimate": held.get("estimate")}
        if snapshot["status"] == "succeeded" and self.settings.keep_outputs:
            kept = self.keeper.keep(snapshot["id"], snapshot.get("output"))
            if kept is not None:
                snapshot = {**snapshot, "output": kept.output}
        model, version = self._model_of(snapshot["id"], prediction)
        snapshot["estimate"] = self.estimator.estimate(snapshot, model, version)
        return snapshot

    def observe(self, snapshot: Mapping[str, Any]) -> None:
        prediction_id, status = snapshot["id"], snapshot["status"]
        with self._lock:
            if self._written.get(prediction_id) == status:
                return
            self._written[prediction_id] = status
            _bound(self._written, self._models)
        final = status in TERMINAL_STATUSES
        try:
            self.store.status_changed(snapshot, final=final,
                                      kept=self.keeper.kept_keys(prediction_id) if final else None)
        except Exception:  # a database outage must not stop the stream; the next change retries
            log.exception("could not record %s as %s", prediction_id, status)
            with self._lock:
                self._written.pop(prediction_id, None)
            return
        if final:
            with self._lock:
                self._written.pop(prediction_id, None)
                model = self._models.pop(prediction_id, (None, None))[0]
            if status == "succeeded" and model is not None:
                self.estimator.forget(model)

    # -- reading ---------------------------------------------------------------------
    def replay_final(self, prediction_id: str) -> bool:
        """Give the hub a finished prediction's final snapshot from its record; False if not finished."""
        row = self.store.get(prediction_id)
        if row is None or row["status"] not in TERMINAL_STATUSES or not isinstance(row["snapshot"], dict):
            return False
        with self._lock:
            self._written[prediction_id] = row["status"]
        self.service.feed.apply(row["snapshot"])
        with self._lock:
            self._written.pop(prediction_id, None)
        return True

    def run_json(self, row: Mapping[str, Any]) -> dict[str, Any]:
        prediction_id = row["id"]
        signer = self.service.signer
        return {
            "id": prediction_id, "model": row["model"], "version": row["version"], "input": row["input"],
            "status": row["status"], "created_at": row["created_at"], "started_at": row["started_at"],
            "completed_at": row["completed_at"], "output": row["output"], "error": row["error"],
            "metrics": row["metrics"],
            "stream_url": f"/api/predictions/{prediction_id}/events?token={signer.sign(prediction_id, 'stream')}",
            "cancel_url": f"/api/predictions/{prediction_id}/cancel?token={signer.sign(prediction_id, 'cancel')}",
        }

    # -- retention -------------------------------------------------------------------
    def start(self) -> None:
        """Run retention now, then every min(1 h, RELAY_RETENTION_DAYS / 10)."""
        self.expire()
        if self._retention is None:
            self._retention = threading.Thread(target=self._expire_forever, name="relay-retention", daemon=True)
            self._retention.start()

    def expire(self) -> int:
        keep_for = self.settings.retention_days * 86400
        try:
            keys = self.store.expire(time.time() - keep_for)
            self.keeper.storage.delete(keys)
        except Exception:
            log.exception("retention failed; it runs again later")
            return 0
        if keys:
            log.info("retention deleted %d kept files", len(keys))
        return len(keys)

    def _expire_forever(self) -> None:
        interval = min(3600.0, self.settings.retention_days * 86400 / 10)
        while not self.service.hub.closing:
            time.sleep(interval)
            self.expire()

    def close(self) -> None:
        self.keeper.close()
        self.store.close()


def _bound(*maps: dict[str, Any]) -> None:
    """Forget the oldest entries of predictions that never finished in this process."""
    for mapping in maps:
        while len(mapping) > _MAX_FOLLOWED:
            mapping.pop(next(iter(mapping)))
