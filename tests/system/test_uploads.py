"""POST /api/uploads: small files inline as data: URLs, larger ones through the files API."""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Callable, Iterator

import httpx
import pytest

from testbed import RelayServer

Start = Callable[..., RelayServer]


def png(extra: int = 0) -> bytes:
    """A valid 1x1 PNG, padded with an ancillary chunk to reach a size."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
    pad = chunk(b"tEXt", b"pad\x00" + b"x" * extra) if extra else b""
    body = chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
    return b"\x89PNG\r\n\x1a\n" + header + pad + body + chunk(b"IEND", b"")


@pytest.fixture
def relay(start_server: Start) -> Iterator[httpx.Client]:
    server = start_server({"RELAY_MAX_UPLOAD_BYTES": str(2 * 2**20), "RELAY_RATE_LIMIT": "6/minute"})
    with httpx.Client(base_url=server.url, timeout=20) as client:
        yield client


def test_uploads(relay: httpx.Client) -> None:
    # Small: inline, the bytes themselves.
    small = png()
    answer = relay.post("/api/uploads", files={"file": ("tiny.png", small, "image/png")})
    assert answer.status_code == 201, answer.text
    url = answer.json()["url"]
    assert answer.json()["success"] is True and url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == small

    # Larger than a create body can carry inline: the emulator's files API, its urls.get.
    big = png(300 * 1024)
    answer = relay.post("/api/uploads", files={"file": ("big.png", big, "image/png")})
    assert answer.status_code == 201, answer.text
    stored = answer.json()["url"]
    assert stored.startswith("http://127.0.0.1:") and "/v1/files/" in stored
    stats = relay.get("/emulator/_emulator/stats").json()
    assert stats.get("POST /v1/files") == 1

    # The URL is accepted as a file input and the model reads the file back.
    model = next(m for m in relay.get("/api/models").json()["models"] if m["name"] == "relay/caption-demo")
    field = next(n for n, p in model["inputs"]["properties"].items() if p.get("format") == "uri")
    create = relay.post("/api/predictions", json={"model": "relay/caption-demo",
                                                  "input": {**model["default_input"], field: stored}})
    assert create.status_code == 201, create.text

    # Refused: too large, a type no model takes, bytes that are not what they claim, not one file.
    too_big = relay.post("/api/uploads", files={"file": ("huge.png", png(2 * 2**20), "image/png")})
    assert (too_big.status_code, too_big.json()["code"]) == (413, "payload_too_large")
    html = relay.post("/api/uploads", files={"file": ("page.html", b"<script>", "text/html")})
    assert (html.status_code, html.json()["code"]) == (415, "unsupported_media_type")
    fake = relay.post("/api/uploads", files={"file": ("fake.png", b"<script>alert(1)</script>", "image/png")})
    assert (fake.status_code, fake.json()["code"]) == (415, "unsupported_media_type")
    assert relay.get("/emulator/_emulator/stats").json().get("POST /v1/files") == 1

    # Rate limited like creates (they share RELAY_RATE_LIMIT): 6 so far this minute.
    limited = relay.post("/api/uploads", files={"file": ("tiny.png", small, "image/png")})
    assert (limited.status_code, limited.json()["code"]) == (429, "rate_limited")
    assert "Retry-After" in limited.headers


def test_not_one_file_or_not_multipart(start_server: Start) -> None:
    server = start_server({})
    with httpx.Client(base_url=server.url, timeout=10) as client:
        none = client.post("/api/uploads", data={"x": "1"}, files={})
        assert none.status_code in (400, 415) and none.json()["success"] is False
        two = client.post("/api/uploads", files=[("a", ("a.png", png(), "image/png")),
                                                 ("b", ("b.png", png(), "image/png"))])
        assert (two.status_code, two.json()["code"]) == (400, "invalid_upload")
        raw = client.post("/api/uploads", content=png(), headers={"Content-Type": "image/png"})
        assert (raw.status_code, raw.json()["code"]) == (415, "unsupported_media_type")
