"""Who is asking: the signed `relay_visitor` cookie.

A visitor is a random id in a cookie signed with SECRET_KEY (so every worker and
machine that shares the key agrees), `HttpOnly`, `SameSite=Lax`, and `Secure`
when the request came over HTTPS. A request without a valid cookie gets a fresh
id for its answer; until the browser sends it back, anything counted per visitor
for that request is also counted against the client address (see
`Visitor.counted_as`). The cookie is set on the answer to a request that lacked a
valid one when that request asked who its visitor is (a create, `/api/runs`) or
answered a page (HTML), so a browser holds it before its first create. Streams
never ask: a reconnect storm after a deploy signs no cookies
(bench/open_burst.py).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from flask import Flask, Response, g, request
from itsdangerous import BadData, URLSafeSerializer

__all__ = ["COOKIE", "Visitor", "current_visitor", "init_app"]

COOKIE = "relay_visitor"
_MAX_AGE = 400 * 24 * 3600  # the longest cookie lifetime browsers honour


@dataclass(frozen=True)
class Visitor:
    """The visitor of this request: `id` is the cookie's id (new if `fresh`)."""

    id: str
    fresh: bool
    address: str

    @property
    def counted_as(self) -> tuple[str, ...]:
        """Keys a per-visitor count applies to: the cookie, and the address while the cookie is new."""
        return (f"v:{self.id}", f"a:{self.address}") if self.fresh else (f"v:{self.id}",)


def _serializer(app: Flask) -> URLSafeSerializer:
    return URLSafeSerializer(str(app.config["SECRET_KEY"]), salt="relay-visitor")


def current_visitor() -> Visitor:
    """The visitor of the current request (read once per request, then remembered)."""
    visitor: Visitor | None = g.get("relay_visitor")
    if visitor is not None:
        return visitor
    from flask import current_app

    address = request.remote_addr or "unknown"
    raw = request.cookies.get(COOKIE)
    visitor_id: str | None = None
    if raw and len(raw) <= 256:
        try:
            value = _serializer(current_app).loads(raw)
        except (BadData, UnicodeError, ValueError):
            value = None
        if isinstance(value, str) and 8 <= len(value) <= 64:
            visitor_id = value
    visitor = Visitor(visitor_id, False, address) if visitor_id else \
        Visitor(secrets.token_urlsafe(16), True, address)
    g.relay_visitor = visitor
    return visitor


def init_app(app: Flask) -> None:
    @app.after_request
    def _set_cookie(response: Response) -> Response:
        if "relay_visitor" not in g and response.mimetype != "text/html":
            return response  # nothing in this request asked who the visitor is
        visitor = current_visitor()
        if visitor.fresh:
            response.set_cookie(COOKIE, _serializer(app).dumps(visitor.id), max_age=_MAX_AGE,
                                httponly=True, samesite="Lax", secure=request.is_secure, path="/")
        return response
