"""POST /api/uploads: a visitor's file turned into a URL to pass as a `format: uri` input.

One multipart file per request, at most RELAY_MAX_UPLOAD_BYTES. Its declared type
must be one a model can take (images, audio, video, text, PDF, JSON, zip) and, for
the image and audio formats whose first bytes are well known, the bytes must agree
with it (a page cannot pass HTML off as a PNG). Small files come back inline as a
`data:` URL, as Replicate recommends for up to ~256 KB, but never longer than a
create body can carry; larger ones go to Replicate's files API (`POST /v1/files`
through the `replicate` client) and the answer is the file's `urls.get`.
"""

from __future__ import annotations

import base64
import io
import logging
from typing import Any

import httpx
from replicate.exceptions import ReplicateError
from werkzeug.datastructures import FileStorage

from .errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType, UpstreamError, UpstreamUnavailable
from .upstream import Upstream

__all__ = ["INLINE_MAX_BYTES", "check_upload", "inline_limit", "store_upload"]

log = logging.getLogger(__name__)

INLINE_MAX_BYTES = 256 * 1024
_ALLOWED_PREFIXES = ("image/", "audio/", "video/")
_ALLOWED_TYPES = frozenset({"text/plain", "text/csv", "text/markdown", "application/pdf",
                            "application/json", "application/zip", "application/x-zip-compressed"})
_REFUSED_TYPES = frozenset({"image/svg+xml"})  # scripts inside; no model needs them from strangers
# First bytes of formats we can recognise, by declared type.
_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
    "audio/wav": (b"RIFF",),
    "audio/x-wav": (b"RIFF",),
    "audio/wave": (b"RIFF",),
    "audio/flac": (b"fLaC",),
    "audio/ogg": (b"OggS",),
    "video/webm": (b"\x1a\x45\xdf\xa3",),
    "application/pdf": (b"%PDF-",),
    "application/zip": (b"PK\x03\x04", b"PK\x05\x06"),
}


def inline_limit(max_body_bytes: int) -> int:
    """The largest file sent back inline: 256 KB, or less when a create body could not carry it."""
    room = max(0, max_body_bytes - 4096) * 3 // 4  # base64 grows by 4/3; leave room for the rest
    return min(INLINE_MAX_BYTES, room)


def check_upload(files: list[FileStorage], max_bytes: int) -> tuple[bytes, str, str]:
    """(data, content type, file name) of the one uploaded file, or the reason it is refused."""
    if len(files) != 1:
        raise InvalidRequest("Send exactly one file, as multipart/form-data.", code="invalid_upload")
    upload = files[0]
    content_type = (upload.mimetype or "").lower()
    if content_type in _REFUSED_TYPES or not (
            content_type.startswith(_ALLOWED_PREFIXES) or content_type in _ALLOWED_TYPES):
        raise UnsupportedMediaType(
            f"Files of type {content_type or 'unknown'!r} cannot be uploaded here: send an image, "
            "audio, video, text, PDF, JSON or zip file.")
    data = upload.stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"The file is larger than {_size(max_bytes)}.")
    if not data:
        raise InvalidRequest("The file is empty.", code="invalid_upload")
    signatures = _SIGNATURES.get(content_type)
    if signatures and not data.startswith(signatures):
        raise UnsupportedMediaType(f"The file's contents are not {content_type}, as it claims.")
    name = (upload.filename or "upload").rsplit("/", 1)[-1].rsplit("\\", 1)[-1][:200] or "upload"
    return data, content_type, name


def store_upload(upstream: Upstream, data: bytes, content_type: str, name: str, *,
                 inline_max: int) -> str:
    """A URL for the file: inline when small, else the files API's `urls.get`."""
    if len(data) <= inline_max:
        return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"
    try:
        created = upstream.client.files.create(io.BytesIO(data), filename=name, content_type=content_type)
    except ReplicateError as error:
        log.warning("the files API refused an upload (HTTP %s): %s", error.status, error.detail)
        raise UpstreamError("Replicate refused the file; try another or a smaller one.") from None
    except httpx.HTTPError as error:
        log.warning("the files API could not be reached: %s", type(error).__name__)
        raise UpstreamUnavailable("Replicate could not be reached to store the file.", retry_after=2) from None
    url = _get_url(created.urls if isinstance(created.urls, dict) else {})
    if url is None:
        raise UpstreamUnavailable("Replicate stored the file but answered without its URL.")
    return url


def _get_url(urls: dict[str, Any]) -> str | None:
    url = urls.get("get")
    return url if isinstance(url, str) and url.startswith(("http://", "https://")) else None


def _size(limit: int) -> str:
    return f"{limit / 2**20:g} MB" if limit >= 2**20 else f"{limit // 1024} KB"

