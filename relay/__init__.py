"""Relay: start Replicate predictions and stream their progress to browsers over SSE."""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import redis
from dotenv import dotenv_values
from flask import Flask, request
from flask.sessions import SessionInterface
from flask.wrappers import Request
from werkzeug.routing import Map
from werkzeug.wrappers import Response as WerkzeugResponse

from . import api, errors, lifecycle, limits, logs, pages, runs_api, security, visitors
from .config import ConfigError, Settings
from .errors import NotFound
from .guard.sql_store import SqlStore
from .runs import Runs
from .service import RelayService
from .stream_open import StreamOpener
from .upstream import Upstream

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["ConfigError", "Settings", "create_app"]

_ROOT = Path(__file__).resolve().parent.parent


class _UrlMap(Map):
    """Werkzeug's map without slash merging: its redirect (`/api//models` to `/api/models`)
    builds an absolute Location from the request's Host header, which anyone can set."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["merge_slashes"] = False
        super().__init__(*args, **kwargs)


class _NoSessions(SessionInterface):
    """Relay keeps nothing in Flask's session (who is asking is relay/visitors.py's cookie).

    Flask's default interface builds a signing serializer and reads the session cookie
    on every request; a stream open is then paying for a session nobody reads.
    """

    def open_session(self, app: Flask, request: Request) -> None:
        return None  # Flask then uses a null session, which refuses writes


_SYNCED_MAX = 256  # Relay registers some thirty views and hooks


class _Relay(Flask):
    url_map_class = _UrlMap
    session_interface = _NoSessions()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._synced: dict[Callable[..., Any], Callable[..., Any]] = {}
        self.stream_opener: StreamOpener | None = None  # relay/stream_open.py, set by create_app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        # Not a WSGI wrapper: no extra frame on every other request's call path (see
        # security._trust_proxies for why that matters to idle streams).
        if self.stream_opener is not None:
            opened = self.stream_opener(environ, start_response)
            if opened is not None:
                return opened
        return self.wsgi_app(environ, start_response)

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Flask's answer, remembered: it asks `inspect` whether each hook and view is a
        coroutine function on every request (six times per stream open). Bounded, since
        `after_this_request` would bring a new function per request."""
        synced = self._synced.get(func)
        if synced is None:
            synced = super().ensure_sync(func)
            if len(self._synced) < _SYNCED_MAX:
                self._synced[func] = synced
        return synced


def create_app(test_config: Mapping[str, Any] | None = None, *,
               upstream_transport: httpx.BaseTransport | None = None) -> Flask:
    """Build the app from the environment (a .env file, then real variables, then test_config).

    `upstream_transport` replaces the HTTP transport to Replicate (tests pass an
    `httpx.WSGITransport` to reach the emulator in-process).
    """
    app = _Relay(__name__, instance_relative_config=False, instance_path=_instance_path(test_config),
                template_folder=str(_ROOT / "templates"), static_folder=str(_ROOT / "static"))
    env = _environment(test_config)
    settings = Settings.from_env(env)
    logs.configure_logging(settings.log_level, [settings.replicate_api_token or "", settings.webhook_secret or "",
                                                settings.metrics_token or ""])
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    secret_key = settings.secret_key or _instance_secret(Path(app.instance_path))
    app.config.update(SECRET_KEY=secret_key, MAX_CONTENT_LENGTH=settings.max_body_bytes)

    embedded = settings.uses_emulator and settings.replicate_base_url is None
    # The embedded emulator takes only a token derived from SECRET_KEY: every worker agrees on it,
    # and nobody without the key (a visitor behind the same reverse proxy) can use its API.
    token = _embedded_emulator_token(secret_key) if embedded else settings.replicate_api_token
    upstream = Upstream(token, settings.replicate_base_url, transport=upstream_transport)
    redis_client = _redis_client(settings)
    service = RelayService(settings, secret_key, upstream, redis_client)
    app.extensions["relay"] = service
    lifecycle.end_streams_on_sigterm(service.shutdown)
    runs = Runs(settings, Path(app.instance_path), secret_key, service)
    service.runs = runs
    if redis_client is None:  # workers sharing the run records' database share the guard's counts there
        service.guard.use_store(SqlStore(runs.store.engine))
    app.extensions["relay_runs"] = runs  # for /api/runs (relay/runs_api.py)
    runs.start()
    if embedded:
        _mount_emulator(app, settings, upstream, token or "")

    errors.init_app(app)
    logs.init_app(app)
    security.init_app(app, settings)
    visitors.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(runs_api.bp)
    limits.init_app(app, settings)  # after the blueprints: it wraps their rate-limited views
    app.stream_opener = StreamOpener(service, limits.stream_slots(app), security.answer_headers(app), upstream)
    return app


def _redis_client(settings: Settings) -> redis.Redis | None:
    """A connection pool for REDIS_URL, checked now so a bad URL fails at start, by name."""
    url = settings.redis_client_url
    if url is None or settings.redis_url is None:
        return None
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3, health_check_interval=30)
    try:
        client.ping()
    except (redis.RedisError, OSError) as error:
        where = settings.redis_url.split("@")[-1].split("?")[0]  # never print the password
        if "CERTIFICATE_VERIFY_FAILED" in str(error) or "certificate verify failed" in str(error):
            raise ConfigError(
                f"REDIS_URL: the TLS certificate of Redis at {where} is not trusted ({error}). If this "
                "Redis uses a self-signed certificate (Heroku Redis does), set RELAY_REDIS_VERIFY_TLS=0."
            ) from None
        raise ConfigError(f"REDIS_URL: cannot reach Redis at {where}: {error}") from None
    return client


def _environment(test_config: Mapping[str, Any] | None) -> dict[str, str]:
    env: dict[str, str] = {k: v for k, v in dotenv_values(_ROOT / ".env").items() if v is not None} \
        if (_ROOT / ".env").exists() else {}
    env.update(os.environ)
    if test_config:
        env.update({k: str(v) for k, v in test_config.items()})
    return env


def _instance_path(test_config: Mapping[str, Any] | None) -> str:
    if test_config and "INSTANCE_PATH" in test_config:
        return str(test_config["INSTANCE_PATH"])
    return os.environ.get("RELAY_INSTANCE_PATH") or str(_ROOT / "instance")


def _instance_secret(instance: Path) -> str:
    """A SECRET_KEY made once and kept, so every worker on this machine signs alike."""
    path = instance / "secret_key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text().strip()
        if key:
            return key
        raise ConfigError(f"{path} is empty: delete it or set SECRET_KEY") from None
    key = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def _from_loopback() -> bool:
    """True when the TCP peer (not a forwarded address) is this machine."""
    peer = request.environ.get("relay.socket_peer", request.environ.get("REMOTE_ADDR", ""))
    sock = request.environ.get("gunicorn.socket")
    if sock is not None and getattr(sock, "family", None) == socket.AF_UNIX:
        return True  # a unix socket is this machine's by definition
    try:
        return ipaddress.ip_address(str(peer)).is_loopback
    except ValueError:
        return False


def _embedded_emulator_token(secret_key: str) -> str:
    from .emulator import token_from_secret

    return token_from_secret(secret_key)


def _mount_emulator(app: Flask, settings: Settings, upstream: Upstream, token: str) -> None:
    """Serve the emulator at /emulator and point the client at it on the first request.

    The emulator is reached through a route, not a WSGI dispatcher wrapped around
    the whole app: a wrapper adds a frame to every request, and each frame on the
    deepest path costs every idle stream's greenlet memory for as long as it lives
    (bench/idle_streams.py measured +4 KB per stream).
    """
    from .emulator import create_emulator

    state_dir = settings.emulator_dir or os.path.join(app.instance_path, "emulator")
    # Output file URLs reach browsers: from RELAY_PUBLIC_URL, else root-relative, never from Host.
    files_url = f"{settings.public_url}/emulator" if settings.public_url else None
    emulator = create_emulator(state_dir, faults_enabled=settings.emulator_faults, token=token,
                               files_url=files_url)

    def forward_to_emulator(subpath: str = "") -> WerkzeugResponse:
        # Only the app itself (over loopback) may use the emulator's API; browsers
        # need only its output files. Otherwise anyone could run emulated work here.
        if not subpath.startswith("files/") and not _from_loopback():
            raise NotFound("There is nothing at this address.")
        environ = dict(request.environ)
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + "/emulator"
        environ["PATH_INFO"] = environ.get("PATH_INFO", "")[len("/emulator"):] or "/"
        return WerkzeugResponse.from_app(emulator, environ)

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    app.add_url_rule("/emulator/", "emulator", forward_to_emulator, methods=methods)
    app.add_url_rule("/emulator/<path:subpath>", "emulator_path", forward_to_emulator, methods=methods)

    @app.before_request
    def _discover_emulator() -> None:
        if upstream.base_url is None:
            base_url, unix_socket = _own_address(request.environ)
            upstream.discover_base_url(base_url, unix_socket=unix_socket)


def _own_address(environ: Mapping[str, Any]) -> tuple[str, str | None]:
    """Where this server listens, as (base URL of the emulator, unix socket path or None).

    Read from the socket the request arrived on (gunicorn and werkzeug put it in
    the environ), never from the Host header: gunicorn fills SERVER_NAME and
    SERVER_PORT from Host, which any client sets, and a unix-socket bind has no
    port at all. The socket's local address is the listener's own.
    """
    script = str(environ.get("SCRIPT_NAME", ""))
    sock = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
    local: object = None
    if sock is not None:
        try:
            local = sock.getsockname()
        except OSError:
            local = None
    if isinstance(local, (str, bytes)) and local:
        path = local.decode() if isinstance(local, bytes) else local
        return f"http://localhost{script}/emulator", path
    if isinstance(local, tuple) and len(local) >= 2:
        host, port = str(local[0]), int(local[1])
        if ":" in host:
            host = f"[{host.split('%')[0]}]"
        return f"http://{host}:{port}{script}/emulator", None
    return f"http://127.0.0.1:{os.environ.get('PORT', '8000')}{script}/emulator", None
