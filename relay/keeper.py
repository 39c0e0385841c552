"""Kept outputs: a succeeded prediction's files copied to Relay's storage before Replicate deletes them.

Replicate deletes a prediction's output files an hour after it ends. When a
prediction succeeds, each URL in its output that points at Replicate's delivery
hosts (`replicate.delivery`, `*.replicate.delivery`) or at the configured emulator
is streamed into storage (at most `max_bytes` each; nothing else is fetched, so
an output can't make Relay fetch an arbitrary address) and the output is
rewritten to signed `/files/<key>?sig=…` URLs before the final snapshot is
published. They are absolute on RELAY_PUBLIC_URL when it is set, else relative
(`/files/…`): the Host header is the client's to choose, so it must not decide
URLs stored for everyone. A copy that fails leaves that URL as it was and is logged.

Signatures are HMACs of the key with SECRET_KEY: they do not expire; a file
lives exactly as long as its run (retention deletes both).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
from itsdangerous import BadSignature, Signer

from .storage import Storage, valid_key

__all__ = ["Keeper", "Kept", "TooLarge"]

log = logging.getLogger(__name__)

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_FILES = 50


class TooLarge(Exception):
    pass


class Kept:
    """What keeping changed: the rewritten output and the storage keys written."""

    def __init__(self, output: Any, keys: list[str]) -> None:
        self.output = output
        self.keys = keys


class Keeper:
    def __init__(self, storage: Storage, secret_key: str, *, max_bytes: int,
                 emulator_base: Callable[[], str | None], public_url: str | None = None,
                 timeout: float = 30.0) -> None:
        self.storage = storage
        self._signer = Signer(secret_key, salt="relay-files")
        self._max_bytes = max_bytes
        self._emulator_base = emulator_base
        self._prefix = public_url or ""
        self._http = httpx.Client(timeout=timeout, follow_redirects=False)
        self._done: dict[str, Kept] = {}
        self._lock = threading.Lock()

    # -- URLs --------------------------------------------------------------------
    def url_for(self, key: str) -> str:
        return f"{self._prefix}/files/{key}?sig={self._signer.get_signature(key).decode()}"

    def verify(self, key: str, signature: str | None) -> bool:
        if not signature or not valid_key(key):
            return False
        try:
            return self._signer.verify_signature(key.encode(), signature.encode())
        except BadSignature:
            return False

    def allowed(self, url: str) -> bool:
        """Only Replicate's delivery hosts over HTTPS, or the emulator Relay is configured with."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme == "https" and (host == "replicate.delivery" or host.endswith(".replicate.delivery")):
            return True
        return self._emulator_file(url) is not None

    def _emulator_file(self, url: str) -> str | None:
        """The absolute URL of one of the configured emulator's files, or None.

        The embedded emulator names its files by root-relative paths (`/emulator/files/…`)
        unless RELAY_PUBLIC_URL is set: those are read from the emulator's own origin."""
        base = self._emulator_base()
        if base is None or ".." in url:
            return None
        if url.startswith("/") and not url.startswith("//"):
            origin = urlsplit(base)
            url = f"{origin.scheme}://{origin.netloc}{url}"
        return url if url.startswith(f"{base.rstrip('/')}/files/") else None

    # -- keeping -------------------------------------------------------------------
    def kept_keys(self, prediction_id: str) -> list[str]:
        with self._lock:
            kept = self._done.get(prediction_id)
        return list(kept.keys) if kept else []

    def keep(self, prediction_id: str, output: Any) -> Kept | None:
        """Copy the output's files; None when it has none to keep (or keeping failed for all)."""
        with self._lock:
            if prediction_id in self._done:
                return self._done[prediction_id]
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", prediction_id):
            return None
        keys: list[str] = []
        counter = iter(range(_MAX_FILES))

        def replace(value: Any, depth: int = 0) -> Any:
            if isinstance(value, str) and self.allowed(value):
                index = next(counter, None)
                if index is None:
                    return value
                key = self._copy(prediction_id, index, value)
                if key is None:
                    return value
                keys.append(key)
                return self.url_for(key)
            if depth < 4 and isinstance(value, list):
                return [replace(item, depth + 1) for item in value]
            if depth < 4 and isinstance(value, dict):
                return {name: replace(item, depth + 1) for name, item in value.items()}
            return value

        rewritten = replace(output)
        if not keys:
            return None
        kept = Kept(rewritten, keys)
        with self._lock:
            self._done[prediction_id] = kept
            if len(self._done) > 1000:
                self._done.pop(next(iter(self._done)))
        return kept

    def _copy(self, prediction_id: str, index: int, url: str) -> str | None:
        name = _SAFE_NAME.sub("_", urlsplit(url).path.rsplit("/", 1)[-1])[-80:].lstrip(".") or "output"
        key = f"runs/{prediction_id}/{index}/{name}"  # its last part is the name a download gets
        source = self._emulator_file(url) or url  # allowed(): an emulator file or Replicate's delivery host
        try:
            with self._http.stream("GET", source) as answer:
                if answer.status_code != 200:
                    log.warning("not keeping output %d of %s: the host answered %d",
                                index, prediction_id, answer.status_code)
                    return None
                length = answer.headers.get("content-length")
                if length and length.isdigit() and int(length) > self._max_bytes:
                    raise TooLarge
                content_type = answer.headers.get("content-type", "application/octet-stream")
                self.storage.put(key, self._limited(answer.iter_bytes(64 * 1024)), content_type)
        except TooLarge:
            log.warning("not keeping output %d of %s: larger than %d bytes", index, prediction_id,
                        self._max_bytes)
            return None
        except (httpx.HTTPError, OSError) as error:
            log.warning("not keeping output %d of %s: %s", index, prediction_id, error)
            return None
        except Exception as error:  # a storage backend's own errors (boto3's), whatever their class
            log.warning("not keeping output %d of %s: storage failed: %s", index, prediction_id, error)
            return None
        return key

    def _limited(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        total = 0
        for chunk in chunks:
            total += len(chunk)
            if total > self._max_bytes:
                raise TooLarge
            yield chunk

    def close(self) -> None:
        self._http.close()
