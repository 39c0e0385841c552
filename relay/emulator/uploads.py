"""Files uploaded with `POST /v1/files`, kept in the state dir like Replicate's.

Each upload is two files under `<state_dir>/uploads/`: the bytes and a JSON
description (name, content type, checksums, times). The answer has
Replicate's shape, and `urls.get` is the URL a client then passes as a model
input; a file-input model reads the upload back through this store. Uploads
expire a day after they are made, as on Replicate.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .store import valid_id, write_atomic

UPLOAD_TTL = 86400.0
MAX_UPLOAD = 10 * 1024 * 1024


def new_upload_id() -> str:
    # Replicate's ids are base64 of a UUID; lowercase alphanumerics suit our file names.
    return base64.b32encode(secrets.token_bytes(20)).decode().lower().rstrip("=")


@dataclass(frozen=True)
class Upload:
    meta: dict[str, Any]
    data: bytes


class UploadStore:
    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir / "uploads"
        self.dir.mkdir(parents=True, exist_ok=True)

    def save(self, name: str, content_type: str, data: bytes, metadata: dict[str, Any],
             now: float) -> dict[str, Any]:
        upload_id = new_upload_id()
        meta = {
            "id": upload_id,
            "name": name,
            "content_type": content_type,
            "size": len(data),
            "etag": hashlib.md5(data, usedforsecurity=False).hexdigest(),
            "checksums": {
                "sha256": hashlib.sha256(data).hexdigest(),
                "md5": hashlib.md5(data, usedforsecurity=False).hexdigest(),
            },
            "metadata": metadata,
            "created_at": now,
            "expires_at": now + UPLOAD_TTL,
        }
        write_atomic(self.dir / f"{upload_id}.bin", data)
        write_atomic(self.dir / f"{upload_id}.json", json.dumps(meta).encode())
        return meta

    def meta(self, upload_id: str) -> dict[str, Any] | None:
        if not valid_id(upload_id):
            return None
        try:
            meta: dict[str, Any] = json.loads((self.dir / f"{upload_id}.json").read_bytes())
            return meta
        except (OSError, ValueError):
            return None

    def load(self, upload_id: str) -> Upload | None:
        meta = self.meta(upload_id)
        if meta is None:
            return None
        try:
            return Upload(meta, (self.dir / f"{upload_id}.bin").read_bytes())
        except OSError:
            return None

    def delete(self, upload_id: str) -> bool:
        if not valid_id(upload_id):
            return False
        found = False
        for suffix in (".json", ".bin"):
            with contextlib.suppress(FileNotFoundError):
                (self.dir / f"{upload_id}{suffix}").unlink()
                found = True
        return found

    def all(self) -> list[dict[str, Any]]:
        with os.scandir(self.dir) as entries:
            ids = [e.name[:-5] for e in entries if e.name.endswith(".json") and not e.name.startswith(".")]
        metas = [m for m in map(self.meta, ids) if m is not None]
        metas.sort(key=lambda m: float(m["created_at"]), reverse=True)
        return metas

    def sweep(self, now: float) -> None:
        for meta in self.all():
            if float(meta["expires_at"]) <= now:
                self.delete(str(meta["id"]))
