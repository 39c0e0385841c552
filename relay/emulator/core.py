"""The per-app bundle of state-dir services and settings that the route modules share.

URLs: API links (`urls.get`, `urls.cancel`, `urls.stream`) are built from the
root the caller reached the API on; only an authenticated caller sees them.
Output file URLs go to browsers, so they never come from a request's Host:
they start with `files_url` when it is set (the standalone emulator's public
address, or the app's RELAY_PUBLIC_URL) and are otherwise root-relative paths
(`/emulator/files/...`), which a browser resolves against the page it is on.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from .auth import capability
from .base import DemoModel, Reader
from .expiry import DATA_TTL, KEEP_FOR, Expiry
from .faults import FaultStore
from .models import model_for
from .problems import not_found
from .render import prediction_json, removed_state
from .stats import RequestStats
from .store import PredictionStore, Record, load_or_create_secret
from .uploads import UploadStore


@dataclass
class Emulator:
    root: Path
    faults_enabled: bool
    token: str | None = None  # the one accepted bearer token; None accepts any
    files_url: str | None = None  # absolute origin (+ path) for output file URLs
    data_ttl: float = DATA_TTL
    keep_for: float = KEEP_FOR
    predictions: PredictionStore = field(init=False)
    uploads: UploadStore = field(init=False)
    expiry: Expiry = field(init=False)
    faults: FaultStore = field(init=False)
    stats: RequestStats = field(init=False)
    _secret: str | None = field(default=None, init=False)
    _secret_lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.predictions = PredictionStore(self.root)
        self.uploads = UploadStore(self.root)
        self.expiry = Expiry(self.root, self.predictions, self.uploads, self.data_ttl, self.keep_for)
        self.faults = FaultStore(self.root)
        self.stats = RequestStats(self.root)

    def secret(self) -> str:
        """The shared webhook secret (read or created once, then kept: it never changes)."""
        with self._secret_lock:
            if self._secret is None:
                self._secret = load_or_create_secret(self.root)
            return self._secret

    def files_root(self, script_root: str) -> str:
        if self.files_url:
            return self.files_url.rstrip("/") + "/"
        return script_root.rstrip("/") + "/"

    def find(self, prediction_id: str) -> tuple[Record, DemoModel]:
        """The record (expiry applied) and its model, or a 404 Problem."""
        record = self.predictions.load(prediction_id)
        if record is not None:
            record = self.expiry.apply(record, time.time())
        model = model_for(record.model) if record is not None else None
        if record is None or model is None:
            raise not_found()
        return record, model

    def stream_url(self, model: DemoModel, record: Record, api_root: str) -> str | None:
        if not model.streams or record.removed is not None:
            return None
        return f"{api_root}v1/streams/{record.id}/{capability(self.secret(), 'stream', record.id)}"

    def render(self, record: Record, model: DemoModel, api_root: str, script_root: str,
               now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        if record.removed is not None:
            state = removed_state(record)
        else:
            state = model.state(record, now, self.files_root(script_root))
        return prediction_json(model, record, state, api_root, self.stream_url(model, record, api_root))

    def snapshot(self, prediction_id: str, api_root: str, script_root: str) -> dict[str, Any] | None:
        """The prediction JSON as of now, re-read from disk; None if it is gone."""
        record = self.predictions.load(prediction_id)
        model = model_for(record.model) if record is not None else None
        if record is None or model is None:
            return None
        return self.render(record, model, api_root, script_root)

    def reader(self) -> Reader:
        return _UploadReader(self.uploads)


class _UploadReader(Reader):
    """File inputs the emulator can read: its own uploads (by their URL) and data: URIs."""

    def __init__(self, uploads: UploadStore) -> None:
        self.uploads = uploads

    def read(self, url: str) -> tuple[bytes, str] | None:
        if url.startswith("data:"):
            header, _, payload = url[5:].partition(",")
            content_type = header.split(";")[0] or "application/octet-stream"
            if header.endswith(";base64"):
                try:
                    return base64.b64decode(payload, validate=True), content_type
                except (ValueError, binascii.Error):
                    return None
            return unquote_to_bytes(payload), content_type
        parts = urlsplit(url).path.rstrip("/").split("/")
        if len(parts) >= 2 and parts[-2] == "files":
            upload = self.uploads.load(parts[-1])
            if upload is not None:
                return upload.data, str(upload.meta["content_type"])
        return None
