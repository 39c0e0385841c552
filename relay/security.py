"""What a browser needs to be told, and what Relay must refuse, to be safe on the open internet.

- Proxies: with RELAY_TRUSTED_PROXIES=N, ProxyFix takes the client address and
  scheme from the last N hops of X-Forwarded-For / X-Forwarded-Proto; with 0
  those headers are ignored, so nobody can choose the address they are counted as.
  X-Forwarded-Host is never trusted, nor is Host used for anything that matters:
  the embedded emulator's address comes from the listening socket (see
  `_own_address` in __init__.py), and pages name RELAY_PUBLIC_URL when set.
- Cross-site requests: every POST except the signed webhook must come from
  Relay's own pages, an origin in RELAY_CORS_ORIGINS, or a client that is not
  a browser (no Origin, no Sec-Fetch-Site). See `cross_site_refusal`.
- CORS: closed unless RELAY_CORS_ORIGINS lists origins; those may read the API
  (and its streams) from their pages.
- Headers on every response: a Content-Security-Policy (no inline script on
  pages; nothing at all on answers that are not HTML), nosniff, no Referer
  (stream URLs carry tokens), HSTS over HTTPS, and framing only for /embed, by
  the origins in RELAY_EMBED_ORIGINS.
- Logs: the dev server's request lines and gunicorn's error lines name the URL,
  query string included; a filter blanks the `token` and `watch` values there.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import Flask, Response, request
from werkzeug.datastructures import Headers
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import Settings
from .errors import Forbidden
from .logs import install_log_redaction

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["DATA_CSP", "AnswerHeaders", "SecurityPolicy", "answer_headers", "content_security_policy",
           "cross_site_refusal", "init_app"]

# The browser itself vouches for these: the request comes from Relay's own page,
# or from the person (a typed address, a bookmark).
_TRUSTED_SITES = frozenset({"same-origin", "none"})
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Server-to-server and signed: Replicate is not a browser and sends no Origin.
_EXEMPT_ENDPOINTS = frozenset({"api.replicate_webhook"})
_REPLICATE_IMAGES = ("https://replicate.delivery", "https://*.replicate.delivery")
_HSTS = "max-age=31536000"
# For answers that are not pages (JSON, event streams, scripts, text): a browser that shows
# one as a document may load nothing for it and must not frame it. Short, too: every stream
# of a reconnect storm carries it, and the server checks each header byte (bench/open_burst.py).
DATA_CSP = "default-src 'none'; frame-ancestors 'none'"


def content_security_policy(path: str, *, embed_origins: Iterable[str] = (),
                            image_origins: Iterable[str] = ()) -> str:
    """The CSP for a response to `path`: only /embed may be framed, by RELAY_EMBED_ORIGINS."""
    if path == "/embed":
        ancestors = " ".join(["'self'", *embed_origins])
    else:
        ancestors = "'none'"
    images = " ".join(["'self'", "data:", *_REPLICATE_IMAGES, *image_origins])
    return (f"default-src 'self'; img-src {images}; script-src 'self'; style-src 'self'; "
            f"connect-src 'self'; frame-ancestors {ancestors}; base-uri 'none'; form-action 'self'")


def _origin(url: str) -> str | None:
    """scheme://host[:port] of a URL, lower-case, default port dropped; None if it has none."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


def cross_site_refusal(headers: Headers | Mapping[str, str], own_origins: Collection[str],
                       allowed_origins: Collection[str]) -> str | None:
    """Why a state-changing request must be refused as cross-site, or None to let it through.

    The rule, in order:
    1. an Origin listed in RELAY_CORS_ORIGINS is let through (its pages are trusted);
    2. Sec-Fetch-Site `same-origin` or `none` is let through: the browser vouches;
       any other value (`cross-site`, and `same-site`, since a sibling subdomain
       may host someone else's content) is refused;
    3. without Sec-Fetch-Site (older browsers), an Origin must be Relay's own;
    4. with neither header the client is not a browser acting for a visitor
       (curl, a server): let through, since no visitor's browser can be tricked into it.
    """
    origin = headers.get("Origin")
    normalized = _origin(origin) if origin else None
    if normalized is not None and normalized in allowed_origins:
        return None
    site = headers.get("Sec-Fetch-Site")
    if site is not None:
        if site.strip().lower() in _TRUSTED_SITES:
            return None
        return f"Sec-Fetch-Site is {site[:40]!r}"
    if origin is None:
        return None
    if normalized is not None and normalized in own_origins:
        return None
    return f"Origin {origin[:100]!r} is not this site"


@dataclass(frozen=True, slots=True)
class SecurityPolicy:
    """The parts of the settings the checks and headers need, worked out once."""

    cors_origins: frozenset[str]
    embed_origins: tuple[str, ...]
    image_origins: tuple[str, ...]
    public_origin: str | None

    @classmethod
    def from_settings(cls, settings: Settings) -> SecurityPolicy:
        images: list[str] = []
        if settings.replicate_base_url:
            # A Replicate-compatible API elsewhere (a standalone emulator) serves its outputs itself.
            upstream = _origin(settings.replicate_base_url)
            if upstream is not None and upstream != "https://api.replicate.com":
                images.append(upstream)
        public = _origin(settings.public_url) if settings.public_url else None
        return cls(frozenset(o for o in map(_origin, settings.cors_origins) if o),
                   settings.embed_origins, tuple(images), public)

    def own_origins(self) -> set[str]:
        """Relay's origin as this request reached it (after ProxyFix), and RELAY_PUBLIC_URL's."""
        origins = {o for o in (_origin(request.host_url), self.public_origin) if o}
        return origins

    def cors_origin(self) -> str | None:
        """The request's Origin when RELAY_CORS_ORIGINS allows it (exactly as sent), else None."""
        if not self.cors_origins:
            return None  # CORS closed: whoever asks
        origin = request.headers.get("Origin")
        if origin and _origin(origin) in self.cors_origins:
            return origin
        return None


def _trust_proxies(app: Flask, hops: int) -> Callable[[dict[str, Any]], None]:
    """Take the client address and scheme from the last `hops` proxies, as ProxyFix does.

    ProxyFix is not wrapped around the app: a WSGI wrapper adds a frame to every
    request's deepest call path, which every idle stream's greenlet then keeps
    (about 4 KB a stream, bench/idle_streams.py). Its logic runs here instead, on
    a copy of the environ, before any other hook reads the address or scheme.
    Returns that logic as a function of the environ, for relay/stream_open.py.
    """
    fixer = ProxyFix(_capture_environ, x_for=hops, x_proto=hops, x_host=0, x_port=0, x_prefix=0)

    def trust(environ: dict[str, Any]) -> None:
        """The environ's address and scheme replaced by what the trusted proxies report
        (the socket's peer kept as `relay.socket_peer`; a second call changes nothing)."""
        environ.setdefault("relay.socket_peer", environ.get("REMOTE_ADDR"))
        fixed = dict(environ)
        fixer(fixed, _no_start_response)
        environ["REMOTE_ADDR"] = fixed.get("REMOTE_ADDR")
        environ["wsgi.url_scheme"] = fixed.get("wsgi.url_scheme", "http")

    @app.before_request
    def _from_trusted_proxies() -> None:
        environ = request.environ
        trust(environ)
        request.remote_addr, request.scheme = environ["REMOTE_ADDR"], environ["wsgi.url_scheme"]

    return trust


def _capture_environ(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    return []


def _no_start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None,
                       /) -> Callable[[bytes], object]:
    return _discard


def _discard(data: bytes) -> object:
    return None


@dataclass(frozen=True, slots=True)
class AnswerHeaders:
    """What init_app adds to answers, for the one path that answers without Flask
    (relay/stream_open.py): the same lists, so the two cannot drift apart."""

    data: tuple[tuple[str, str], ...]  # answers that are not HTML (streams among them)
    hsts: tuple[str, str]  # over HTTPS
    cors: bool  # RELAY_CORS_ORIGINS is set: API answers depend on the request's Origin
    trust_proxies: Callable[[dict[str, Any]], None] | None  # RELAY_TRUSTED_PROXIES: see _trust_proxies


def answer_headers(app: Flask) -> AnswerHeaders:
    found = app.extensions[_ANSWER_HEADERS]
    assert isinstance(found, AnswerHeaders)
    return found


_ANSWER_HEADERS = "relay.answer_headers"


def init_app(app: Flask, settings: Settings) -> None:
    """Trust exactly the configured proxies, refuse cross-site writes, answer CORS, set headers."""
    policy = SecurityPolicy.from_settings(settings)
    hops = settings.trusted_proxies
    trust_proxies = _trust_proxies(app, hops) if hops else None
    install_log_redaction()

    @app.before_request
    def _guard() -> Response | None:
        if request.method == "OPTIONS" and request.path.startswith("/api/") \
                and "Access-Control-Request-Method" in request.headers:
            return _preflight(policy)
        if request.method in _UNSAFE_METHODS and request.endpoint is not None \
                and request.endpoint not in _EXEMPT_ENDPOINTS:
            reason = cross_site_refusal(request.headers, policy.own_origins(), policy.cors_origins)
            if reason is not None:
                raise Forbidden(f"Cross-site requests are refused ({reason}): start predictions from "
                                "this site's own pages, or ask its owner to allow your origin.",
                                code="cross_site")
        return None

    # Worked out once: a reconnect storm adds these to thousands of answers (bench/open_burst.py).
    everywhere = [("Content-Security-Policy", content_security_policy(
                      "/", embed_origins=policy.embed_origins, image_origins=policy.image_origins)),
                  ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"),
                  ("X-Frame-Options", "DENY")]  # for browsers that predate frame-ancestors
    embed = [("Content-Security-Policy", content_security_policy(
                 "/embed", embed_origins=policy.embed_origins, image_origins=policy.image_origins)),
             *everywhere[1:3]]
    data = [("Content-Security-Policy", DATA_CSP), *everywhere[1:]]
    app.extensions[_ANSWER_HEADERS] = AnswerHeaders(tuple(data), ("Strict-Transport-Security", _HSTS),
                                                    bool(policy.cors_origins), trust_proxies)

    @app.after_request
    def _headers(response: Response) -> Response:
        headers = response.headers
        path = request.path
        # Added, not set: no view sets these (they are this hook's alone), and a set would first
        # look each one up, which werkzeug answers by raising and catching a KeyError.
        if response.mimetype != "text/html":
            headers.extend(data)
        else:
            headers.extend(embed if path == "/embed" else everywhere)
        if request.is_secure:
            headers["Strict-Transport-Security"] = _HSTS
        if path.startswith("/api/"):
            origin = policy.cors_origin()
            if origin is not None:
                headers["Access-Control-Allow-Origin"] = origin
                headers["Access-Control-Expose-Headers"] = "Retry-After"
            if policy.cors_origins:
                headers.add("Vary", "Origin")  # the answer depends on who asks: caches must not mix them
        return response


def _preflight(policy: SecurityPolicy) -> Response:
    """The answer to a CORS preflight: permission for listed origins, none for others."""
    response = Response(status=204)
    origin = policy.cors_origin()
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = "GET, POST"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type, Last-Event-ID, Authorization, Idempotency-Key"
        response.headers["Access-Control-Max-Age"] = "600"
    return response
