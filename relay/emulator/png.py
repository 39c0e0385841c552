"""A real, deterministic PNG for image-demo outputs.

The encoder is written out here with zlib and struct rather than pulled in
from Pillow: the emulator draws one kind of synthetic picture, and thirty
lines of PNG chunk writing cost far less than a large compiled dependency
in every deployment of Relay.
"""

from __future__ import annotations

import hashlib
import math
import struct
import zlib
from functools import lru_cache

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(tag: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(tag + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)


def encode_rgb(width: int, height: int, rows: list[bytes]) -> bytes:
    """PNG bytes for 8-bit RGB rows (each `width * 3` bytes, top to bottom)."""
    # Filter type 0 ("None") in front of every scanline; zlib does the rest.
    raw = b"".join(b"\x00" + row for row in rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        _SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(b"IEND", b"")
    )


def _mix(a: bytes, b: bytes, t: float) -> tuple[int, int, int]:
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


@lru_cache(maxsize=32)
def render_image(prompt: str, seed: int, width: int, height: int) -> bytes:
    """A diagonal gradient with soft bands, its colours chosen by prompt+seed.

    Every pixel depends only on x+y, so the picture is one strip of
    width+height colours and each row is a slice of it: fast at 1024x1024
    without any per-pixel Python loop.
    """
    digest = hashlib.sha256(f"{prompt}\0{seed}".encode()).digest()
    start, end, band = digest[0:3], digest[3:6], digest[6:9]
    waves = 2 + digest[9] % 6
    shift = digest[10] / 255 * 2 * math.pi
    mirrored = digest[11] & 1 == 1
    length = width + height - 1
    strip = bytearray()
    for p in range(length):
        t = p / max(1, length - 1)
        base = bytes(_mix(start, end, t))
        strength = (math.sin(2 * math.pi * waves * t + shift) + 1) / 2 * 0.4
        strip += bytes(_mix(base, band, strength))
    rows = []
    for y in range(height):
        offset = (height - 1 - y) if mirrored else y
        rows.append(bytes(strip[3 * offset : 3 * (offset + width)]))
    return encode_rgb(width, height, rows)
