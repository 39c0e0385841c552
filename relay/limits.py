"""How much one client may ask of Relay: predictions created per minute, streams held open.

Both limits count per *client address*: `request.remote_addr`, which is the
socket's peer unless RELAY_TRUSTED_PROXIES lets ProxyFix (security.py) take it
from X-Forwarded-For. An IPv6 client counts by its /64, since one host is
usually handed a whole /64 and could otherwise pick a fresh address per request.

- Creations go through Flask-Limiter with a moving window (no burst of twice
  the limit at a window's edge), in memory, or in Redis when REDIS_URL is set
  so that every worker shares one count. Routes opt in with `@creation_limited`;
  the limiter itself is built per app in `init_app`, so no state outlives an app.
- Open streams are counted by `StreamSlots`: a slot is taken before a stream
  starts and given back when its generator ends; in this process, or with
  REDIS_URL across the deployment (`RedisStreamSlots`; both in slots.py).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter, RateLimitExceeded

from .config import Settings
from .errors import error_response
from .slots import RedisStreamSlots, StreamSlot, StreamSlots

__all__ = ["address_key", "cancel_limited", "client_key", "creation_limited", "init_app", "stream_slot",
           "stream_slots"]

log = logging.getLogger(__name__)

CREATE_SCOPE = "create"
CANCEL_SCOPE = "cancel"
_MARK = "_relay_creation_limited"
_CANCEL_MARK = "_relay_cancel_limited"
_SLOTS = "relay.stream_slots"
# How long a client turned away for holding too many streams should wait: about
# the time a dead connection of theirs takes to be noticed (one heartbeat).

View = TypeVar("View", bound=Callable[..., object])


def client_key() -> str:
    """The address a request counts against: the IPv4 address, or the IPv6 /64."""
    return address_key(request.remote_addr or "")


@functools.lru_cache(maxsize=4096)  # clients come back (every stream open asks); parsing costs ~10 µs
def address_key(address: str) -> str:
    """The key of a client address (see `client_key`)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def creation_limited(view: View) -> View:
    """Mark a view as creating predictions: all such views share RELAY_RATE_LIMIT per client."""
    setattr(view, _MARK, True)
    return view


def cancel_limited(view: View) -> View:
    """Mark a view as cancelling: such views share RELAY_CANCEL_RATE_LIMIT per client."""
    setattr(view, _CANCEL_MARK, True)
    return view


def stream_slot() -> StreamSlot:
    """Take a stream slot for the current request's client (429 when it holds too many)."""
    return stream_slots(current_app).acquire(client_key())


def stream_slots(app: Flask) -> StreamSlots:
    slots = app.extensions[_SLOTS]
    assert isinstance(slots, StreamSlots)
    return slots


def _remove_hooks(app: Flask, limiter: Limiter) -> None:
    """Take Flask-Limiter's per-request hooks off `app` (see init_app for why)."""

    def belongs(hook: object) -> bool:
        if isinstance(hook, functools.partial):
            return any(arg is limiter for arg in hook.args)
        return getattr(hook, "__self__", None) is limiter

    registries: list[dict[Any, list[Any]]] = [app.before_request_funcs, app.after_request_funcs,
                                               app.teardown_request_funcs]
    for registry in registries:
        hooks = registry.get(None, [])
        hooks[:] = [hook for hook in hooks if not belongs(hook)]


def _storage_uri(redis_url: str | None) -> str:
    if redis_url is None:
        return "memory://"
    # The `limits` library names Redis over a Unix socket redis+unix://.
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url.removeprefix("unix://")
    return redis_url


def init_app(app: Flask, settings: Settings) -> None:
    """Rate-limit the views marked `creation_limited` and set up the per-client stream cap.

    Call after the blueprints are registered: the marked views are found in
    `app.view_functions`.
    """
    limiter = Limiter(
        client_key,
        storage_uri=_storage_uri(settings.redis_client_url),
        strategy="moving-window",
        key_prefix="relay-limits",
        # If Redis stops answering, count in this process rather than fail every create.
        in_memory_fallback_enabled=settings.redis_url is not None,
        headers_enabled=False,
    )
    limiter.init_app(app)
    # Flask-Limiter also checks, before every request, the default, application and
    # blueprint limits. Relay declares none: its only limits are the decorated views'
    # below, which the decorators check when their view runs. The pass before every
    # request found nothing to count, yet it was one of the larger costs of every
    # stream open in a profile (bench/open_burst.py), so it is taken out.
    # Its after-request hook adds rate-limit headers (disabled here) and makes conditional
    # deductions (none declared); its teardown resets state that lives on the request
    # context anyway. They go too.
    _remove_hooks(app, limiter)
    limit = limiter.shared_limit(settings.rate_limit, scope=CREATE_SCOPE)
    cancel_limit = limiter.shared_limit(settings.cancel_rate_limit, scope=CANCEL_SCOPE)
    for endpoint, view in list(app.view_functions.items()):
        wrapped: Any = view  # the same view, checked first; Flask-Limiter's types are wider
        if getattr(view, _MARK, False):
            wrapped = limit(wrapped)
        if getattr(view, _CANCEL_MARK, False):
            wrapped = cancel_limit(wrapped)
        app.view_functions[endpoint] = wrapped

    def rate_limited(error: RateLimitExceeded) -> Response:
        current = limiter.current_limit
        wait = current.reset_at - time.time() if current is not None else 60.0
        seconds = max(1, math.ceil(wait))
        view = app.view_functions.get(request.endpoint or "")
        what = "cancels" if view is not None and getattr(view, _CANCEL_MARK, False) else "predictions"
        return error_response(
            429, "rate_limited",
            f"Too many {what} from your address (the limit is {error.description}). "
            f"Try again in {seconds} second{'s' if seconds != 1 else ''}.",
            retry_after=seconds)

    app.register_error_handler(RateLimitExceeded, rate_limited)
    slots = StreamSlots(settings.max_streams_per_client)
    url = settings.redis_client_url
    if url is not None:
        import redis

        slots = RedisStreamSlots(redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3),
                                 settings.max_streams_per_client)
    app.extensions[_SLOTS] = slots
