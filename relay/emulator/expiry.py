"""Old predictions lose their data, then disappear, as on Replicate.

Replicate removes a prediction's input, output, logs and files an hour after
it finishes (`data_removed` becomes true) and keeps the bare record. The
emulator does the same after `data_ttl` seconds, keeping a tombstone (status,
times, error, metrics) that lists and gets still answer with; after
`keep_for` seconds the tombstone file goes too and the id is a 404. Uploaded
files expire at their `expires_at`.

Nothing runs in the background: a request applies the rule to the record it
reads, and at most once per `interval` one request sweeps the whole state
dir. A marker file's mtime says when the last sweep ran, so several workers
on one directory share the schedule (a race only means two harmless sweeps).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .models import model_for
from .store import PredictionStore, Record
from .timeline import TERMINAL
from .uploads import UploadStore

DATA_TTL = 3600.0  # Replicate: API predictions' data is removed after an hour
KEEP_FOR = 86400.0  # then the tombstone is kept a day


@dataclass
class Expiry:
    root: Path
    predictions: PredictionStore
    uploads: UploadStore
    data_ttl: float = DATA_TTL
    keep_for: float = KEEP_FOR

    @property
    def interval(self) -> float:
        return max(1.0, min(60.0, self.data_ttl / 10))

    def apply(self, record: Record, now: float) -> Record | None:
        """The record as it should be at `now`: unchanged, removed (tombstone), or None if gone."""
        if record.removed is not None:
            ended = float(record.removed.get("completed_at") or record.created_at)
            if now >= ended + self.keep_for:
                self.predictions.delete(record.id)
                return None
            return record
        model = model_for(record.model)
        if model is None or now < record.created_at + self.data_ttl:
            return record  # the cheap test first: no prediction ends before it is created
        # The phase is arithmetic; the full state (logs, output) is only built once, to freeze it.
        phase = model.timeline(record).phase(now, record.canceled_at)
        if phase.status not in TERMINAL or phase.completed_at is None:
            return record
        if now < phase.completed_at + self.data_ttl:
            return record
        error = model.state(record, now, "/").error if phase.status == "failed" else None
        tombstone: dict[str, Any] = {
            "status": phase.status,
            "started_at": phase.started_at,
            "completed_at": phase.completed_at,
            "error": error,
        }
        removed = replace(record, input={}, extra=None, removed=tombstone)
        self.predictions.save(removed)
        return self.apply(removed, now)  # may be old enough to delete outright

    def maybe_sweep(self, now: float | None = None) -> bool:
        """Sweep the state dir if the last sweep is older than `interval`; True if it ran."""
        now = time.time() if now is None else now
        marker = self.root / "last_sweep"
        try:
            if now - marker.stat().st_mtime < self.interval:
                return False
        except FileNotFoundError:
            pass
        marker.touch()
        os.utime(marker, (now, now))
        self.sweep(now)
        return True

    def sweep(self, now: float) -> None:
        for record in self.predictions.all():
            with contextlib.suppress(OSError):
                self.apply(record, now)
        self.uploads.sweep(now)
