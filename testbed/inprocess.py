"""Relay built in this process, its embedded emulator reached through `httpx.WSGITransport`.

No socket and no server: the test's httpx client calls the app's WSGI callable,
and so does the app's `replicate` client when it calls its emulator at
`/emulator` (httpx's WSGITransport reports a loopback peer, as the app's own
calls over 127.0.0.1 would). Everything between the client and the emulator is
the real code; only gunicorn and gevent are missing, so tests that need several
workers, restarts or slow readers stay in `tests/system/`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from testbed.servers import TEST_SECRET

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask import Flask

BASE_URL = "http://relay.test"
SETTINGS: dict[str, str] = {
    "SECRET_KEY": TEST_SECRET,
    "RELAY_EMULATOR_FAULTS": "1",
    "RELAY_POLL_INTERVAL": "0.05",
    "RELAY_HEARTBEAT_INTERVAL": "1",
    "RELAY_RATE_LIMIT": "100000/minute",
    "RELAY_LOG_LEVEL": "WARNING",
}


def in_process_app(tmp: Path, settings: Mapping[str, str] | None = None) -> Flask:
    """`create_app` with the test settings (and `settings` on top), upstream calls going back into it."""
    from relay import create_app

    app: Flask | None = None

    def relay(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        assert app is not None
        return app(environ, start_response)

    config: dict[str, Any] = {"INSTANCE_PATH": str(tmp / "instance"), **SETTINGS, **(settings or {})}
    app = create_app(config, upstream_transport=transport_to(relay))
    return app


def in_process_client(app: Flask, **kwargs: Any) -> httpx.Client:
    """An httpx client that calls `app` directly (headers, cookies and streams as over HTTP)."""
    return httpx.Client(transport=transport_to(app), base_url=BASE_URL, timeout=10, **kwargs)


def transport_to(app: WSGIApplication) -> httpx.WSGITransport:
    """A WSGITransport whose PATH_INFO is what a server sends (PEP 3333: the URL's bytes as latin-1).

    httpx hands the app the path decoded as UTF-8 text; gunicorn and werkzeug hand
    it the raw bytes, which the app decodes itself. Without this, a non-ASCII path
    would reach Relay differently in-process than over HTTP.
    """

    def as_a_server_would(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        environ["PATH_INFO"] = environ["PATH_INFO"].encode("utf-8").decode("latin-1")
        return app(environ, start_response)

    return httpx.WSGITransport(app=as_a_server_would)
