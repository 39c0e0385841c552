"""Prediction records and the webhook secret, kept as files in the state dir.

Nothing about a prediction lives in memory: several worker processes each
mount their own emulator over the same directory, so the files are the only
source of truth. A record holds only what was decided at create (and the
cancel time); status, logs and output are recomputed from it on every read.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_ID_LENGTH = 26
# Ids reach the filesystem, so anything but short lowercase alphanumerics is
# refused before a path is ever built from it.
_ID_RE = re.compile(r"[a-z0-9]{1,64}")


def valid_id(value: str) -> bool:
    return _ID_RE.fullmatch(value) is not None


def new_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))


def write_atomic(path: Path, data: bytes) -> None:
    """Write a whole file so readers in other processes never see half of it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@dataclass(frozen=True)
class Record:
    """What is stored for one prediction."""

    id: str
    model: str
    version: str
    input: dict[str, Any]
    created_at: float
    webhook: str | None = None
    webhook_events_filter: list[str] | None = None
    canceled_at: float | None = None
    # Facts a model decided at create (e.g. what an uploaded image looked like).
    extra: dict[str, Any] | None = None
    # Set once the data is removed: the final status, times and error, frozen.
    removed: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Record:
        return cls(
            id=str(data["id"]),
            model=str(data["model"]),
            version=str(data["version"]),
            input=dict(data["input"]),
            created_at=float(data["created_at"]),
            webhook=data.get("webhook"),
            webhook_events_filter=data.get("webhook_events_filter"),
            canceled_at=None if data.get("canceled_at") is None else float(data["canceled_at"]),
            extra=data.get("extra"),
            removed=data.get("removed"),
        )

    def canceled(self, at: float) -> Record:
        return replace(self, canceled_at=at)


class PredictionStore:
    """One JSON file per prediction under `<state_dir>/predictions/`."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir / "predictions"
        self.dir.mkdir(parents=True, exist_ok=True)

    def _path(self, prediction_id: str) -> Path:
        return self.dir / f"{prediction_id}.json"

    def delete(self, prediction_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(prediction_id).unlink()

    def save(self, record: Record) -> None:
        write_atomic(self._path(record.id), json.dumps(record.to_json()).encode())

    def load(self, prediction_id: str) -> Record | None:
        if not valid_id(prediction_id):
            return None
        try:
            raw = self._path(prediction_id).read_bytes()
            return Record.from_json(json.loads(raw))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def all(self) -> list[Record]:
        """Every readable record, newest first."""
        with os.scandir(self.dir) as entries:
            names = [e.name for e in entries if e.name.endswith(".json") and not e.name.startswith(".")]
        records: list[Record] = []
        for name in names:
            record = self.load(name[: -len(".json")])
            if record is not None:
                records.append(record)
        records.sort(key=lambda r: r.created_at, reverse=True)
        return records


_SECRET_PREFIX = "whsec_"  # noqa: S105 - a format prefix, not a secret


def _looks_like_secret(text: str) -> bool:
    if not text.startswith(_SECRET_PREFIX):
        return False
    try:
        return len(base64.b64decode(text[len(_SECRET_PREFIX) :], validate=True)) == 32
    except ValueError:
        return False


def load_or_create_secret(state_dir: Path, *, wait: float = 2.0) -> str:
    """The webhook signing secret shared by every process on this state dir.

    The first process to get O_CREAT|O_EXCL on the file writes it; any other
    reads that one. A reader may catch the file between creation and write, so
    it retries briefly until a whole secret is there.
    """
    path = state_dir / "webhook_secret"
    candidate = _SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        deadline = time.monotonic() + wait
        while True:
            text = path.read_text().strip()
            if _looks_like_secret(text):
                return text
            if time.monotonic() > deadline:
                raise RuntimeError(f"unreadable webhook secret in {path}") from None
            time.sleep(0.01)
    with os.fdopen(fd, "w") as fh:
        fh.write(candidate)
    return candidate
