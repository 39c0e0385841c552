"""The per-app bundle of state-dir services that the route modules share."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .faults import FaultStore
from .models import DemoModel, model_for
from .problems import not_found
from .render import prediction_json
from .stats import RequestStats
from .store import PredictionStore, Record, load_or_create_secret


@dataclass
class Emulator:
    root: Path
    faults_enabled: bool
    predictions: PredictionStore = field(init=False)
    faults: FaultStore = field(init=False)
    stats: RequestStats = field(init=False)
    _secret: str | None = field(default=None, init=False)
    _secret_lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.predictions = PredictionStore(self.root)
        self.faults = FaultStore(self.root)
        self.stats = RequestStats(self.root)

    def secret(self) -> str:
        """The shared webhook secret (read or created once, then kept: it never changes)."""
        with self._secret_lock:
            if self._secret is None:
                self._secret = load_or_create_secret(self.root)
            return self._secret

    def find(self, prediction_id: str) -> tuple[Record, DemoModel]:
        """The record and its model, or a 404 Problem."""
        record = self.predictions.load(prediction_id)
        model = model_for(record.model) if record is not None else None
        if record is None or model is None:
            raise not_found()
        return record, model

    def snapshot(self, prediction_id: str, url_root: str) -> dict[str, Any] | None:
        """The prediction JSON as of now, re-read from disk; None if it is gone."""
        record = self.predictions.load(prediction_id)
        model = model_for(record.model) if record is not None else None
        if record is None or model is None:
            return None
        return prediction_json(model, record, model.state(record, time.time(), url_root), url_root)
