"""Where kept output files live: a folder (file://, the default) or an S3-compatible bucket.

Both stores take a key like `runs/<prediction id>/0/output.png` (the output's index, then its
own file name, which a download keeps) and a stream of bytes, and give the bytes back
as a stream, so a large file is never held whole in memory. The S3 store uses boto3 with
its usual environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, AWS_REGION); Relay serves the files
itself under /files/, so the bucket can stay private.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

__all__ = ["FileStorage", "S3Storage", "Storage", "StoredFile", "open_storage", "valid_key"]

_KEY = re.compile(r"^runs/[A-Za-z0-9_-]{1,64}/[0-9]{1,3}/[A-Za-z0-9._-]{1,120}$")
CHUNK = 64 * 1024


def valid_key(key: str) -> bool:
    """Keys reach paths and bucket names: only the shape Relay itself makes is accepted."""
    return _KEY.fullmatch(key) is not None and ".." not in key


@dataclass(frozen=True)
class StoredFile:
    chunks: Iterator[bytes]
    size: int | None
    content_type: str


class Storage(Protocol):
    kind: str

    def put(self, key: str, chunks: Iterable[bytes], content_type: str) -> None: ...

    def open(self, key: str) -> StoredFile | None: ...

    def delete(self, keys: list[str]) -> None: ...


class FileStorage:
    """Files under one folder; the content type is kept in a sidecar file."""

    kind = "file"

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if not valid_key(key):
            raise ValueError(f"not a storage key: {key!r}")
        return self.root / key

    def put(self, key: str, chunks: Iterable[bytes], content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
            Path(f"{path}.type").write_text(content_type)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def open(self, key: str) -> StoredFile | None:
        if not valid_key(key):
            return None
        path = self._path(key)
        try:
            handle = path.open("rb")
        except OSError:
            return None
        try:
            content_type = Path(f"{path}.type").read_text().strip() or "application/octet-stream"
        except OSError:
            content_type = "application/octet-stream"

        def chunks() -> Iterator[bytes]:
            with handle:
                while block := handle.read(CHUNK):
                    yield block

        return StoredFile(chunks(), os.fstat(handle.fileno()).st_size, content_type)

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            if valid_key(key):
                for path in (self._path(key), Path(f"{self._path(key)}.type")):
                    with contextlib.suppress(OSError):
                        path.unlink()
                # The output's folder, then the prediction's: each only when empty.
                for folder in (self._path(key).parent, self._path(key).parent.parent):
                    with contextlib.suppress(OSError):
                        folder.rmdir()


class S3Storage:
    """Objects under `prefix/` in one bucket of any S3-compatible store."""

    kind = "s3"

    def __init__(self, bucket: str, prefix: str, client: Any = None) -> None:
        import boto3

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client or boto3.client("s3")

    def name(self, key: str) -> str:
        if not valid_key(key):
            raise ValueError(f"not a storage key: {key!r}")
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, chunks: Iterable[bytes], content_type: str) -> None:
        # Spooled to a temporary file (memory up to 8 MB) so boto3 can send it in parts.
        with tempfile.SpooledTemporaryFile(max_size=8 * 2**20) as spool:
            for chunk in chunks:
                spool.write(chunk)
            spool.seek(0)
            self.client.upload_fileobj(spool, self.bucket, self.name(key),
                                       ExtraArgs={"ContentType": content_type})

    def open(self, key: str) -> StoredFile | None:
        if not valid_key(key):
            return None
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.name(key))
        except self.client.exceptions.NoSuchKey:
            return None
        body = answer["Body"]

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(CHUNK)
            finally:
                body.close()

        return StoredFile(chunks(), answer.get("ContentLength"),
                          answer.get("ContentType") or "application/octet-stream")

    def delete(self, keys: list[str]) -> None:
        names: list[Any] = [{"Key": self.name(key)} for key in keys if valid_key(key)]
        for start in range(0, len(names), 1000):
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": names[start:start + 1000]})


def open_storage(url: str | None, instance: Path) -> Storage:
    """The store RELAY_STORAGE_URL names (unset: `<instance>/files`)."""
    if url is None:
        return FileStorage(instance / "files")
    parts = urlsplit(url)
    if parts.scheme == "s3":
        return S3Storage(parts.netloc, parts.path)
    return FileStorage(Path(parts.path))
