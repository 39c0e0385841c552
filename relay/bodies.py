"""Reading request bodies with a deadline, so a client that trickles bytes cannot hold a worker.

gunicorn hands the app a body it reads from the socket only as the app asks,
with no deadline of its own: a client sending one byte a second keeps a
greenlet (and one of `worker_connections`) for as long as it likes. Every body
Relay reads goes through `read_body`, which gives the whole read
RELAY_BODY_TIMEOUT seconds. Under gevent (the production server) the deadline
is a `gevent.Timeout`, which interrupts a blocked socket read; without gevent
(`flask run`, threads) reads block normally and the proxy in front is trusted
to buffer. In production gunicorn belongs behind a buffering proxy anyway
(docs/deployment.md): it then receives whole bodies at once.
"""

from __future__ import annotations

from typing import IO

from .errors import PayloadTooLarge, RelayError

__all__ = ["BodyTimeout", "read_body"]

_CHUNK = 16 * 1024


class BodyTimeout(RelayError):
    status = 408
    code = "request_timeout"


def _gevent_patched() -> bool:
    try:
        from gevent import monkey
    except ImportError:
        return False
    return bool(monkey.is_module_patched("socket"))


def read_body(stream: IO[bytes], limit: int, deadline: float) -> bytes:
    """At most `limit` bytes of the body (PayloadTooLarge past it), read within `deadline` seconds."""
    if not _gevent_patched():
        return _read(stream, limit)
    import gevent

    try:
        with gevent.Timeout(deadline):
            return _read(stream, limit)
    except gevent.Timeout:
        raise BodyTimeout(f"The request body did not arrive within {deadline:g} seconds.") from None


def _read(stream: IO[bytes], limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        chunk = stream.read(min(_CHUNK, limit + 1 - size))
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit // 1024} KB.")
