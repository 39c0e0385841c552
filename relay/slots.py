"""RELAY_MAX_STREAMS_PER_CLIENT: open streams per client, in this process or in Redis.

`StreamSlots` counts in this process. `RedisStreamSlots` counts across every
worker and machine:

Each client address has a sorted set `relay:slots:<address>` whose members are
the open streams (one random id each) scored by when they expire. Taking a slot
is one Lua script: drop expired members, count, add if under the cap. Every
process renews the slots it holds every few seconds, so a worker that dies
without giving its slots back frees them within `ttl` seconds by itself.

When Redis does not answer, counting falls back to this process (`StreamSlots`)
rather than refusing every stream.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time

import redis

from .errors import RateLimited

__all__ = ["RedisStreamSlots", "StreamSlot", "StreamSlots", "too_many_streams"]

log = logging.getLogger(__name__)

_TAKE = """
local now, ttl, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZCARD', KEYS[1])
if held >= cap then return held end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(ttl) + 1)
return -1
"""


_STREAM_RETRY_SECONDS = 15


class StreamSlot:
    """One open stream of one client; `release` is safe to call more than once."""

    def __init__(self, slots: StreamSlots, client: str, token: str | None = None) -> None:
        self._slots = slots
        self._client = client
        self._token = token
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._slots._give_back(self._client, self._token)


def too_many_streams(held: int) -> RateLimited:
    return RateLimited(
        f"Your address already has {held} streams open, the most allowed. Close one (or follow "
        "several predictions on one stream with /api/events) and try again.",
        code="too_many_streams", retry_after=_STREAM_RETRY_SECONDS)


class StreamSlots:
    """Open streams per client in this process, at most `per_client` each."""

    def __init__(self, per_client: int) -> None:
        self.per_client = per_client
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def acquire(self, client: str) -> StreamSlot:
        """A slot for one more stream, or RateLimited (429 too_many_streams) at the cap."""
        with self._lock:
            held = self._held.get(client, 0)
            if held >= self.per_client:
                raise too_many_streams(held)
            self._held[client] = held + 1
        return StreamSlot(self, client)

    def held(self, client: str) -> int:
        return self._held.get(client, 0)

    def _give_back(self, client: str, token: str | None) -> None:
        with self._lock:
            left = self._held.get(client, 0) - 1
            if left > 0:
                self._held[client] = left
            else:
                # Forget the address entirely, so the table holds only clients with open streams.
                self._held.pop(client, None)


class RedisStreamSlots(StreamSlots):
    """Open streams per client across the deployment, at most `per_client` each."""

    def __init__(self, client: redis.Redis, per_client: int, ttl: float = 30.0) -> None:
        super().__init__(per_client)
        self._redis = client
        self._ttl = ttl
        self._take = client.register_script(_TAKE)
        self._mine: dict[str, str] = {}  # slot id -> client address, for renewal
        self._renewer: threading.Thread | None = None

    def acquire(self, client: str) -> StreamSlot:
        token = secrets.token_hex(8)
        try:
            held = int(self._take(keys=[_key(client)], args=[time.time(), self._ttl, self.per_client, token]))
        except (redis.RedisError, OSError) as error:
            log.warning("Redis is away; counting streams in this process (%s)", type(error).__name__)
            return super().acquire(client)
        if held >= 0:
            raise too_many_streams(held)
        with self._lock:
            self._mine[token] = client
        self._start_renewing()
        return StreamSlot(self, client, token)

    def held(self, client: str) -> int:
        try:
            return int(self._redis.zcount(_key(client), time.time(), "+inf"))
        except (redis.RedisError, OSError):
            return super().held(client)

    def _give_back(self, client: str, token: str | None) -> None:
        if token is None:
            super()._give_back(client, None)
            return
        with self._lock:
            self._mine.pop(token, None)
        try:
            self._redis.zrem(_key(client), token)
        except (redis.RedisError, OSError):
            pass  # it expires by itself

    def _start_renewing(self) -> None:
        with self._lock:
            if self._renewer is not None:
                return
            self._renewer = threading.Thread(target=self._renew, name="relay-slot-renewer", daemon=True)
        self._renewer.start()

    def _renew(self) -> None:
        while True:
            time.sleep(self._ttl / 3)
            with self._lock:
                mine = list(self._mine.items())
            if not mine:
                continue
            until = time.time() + self._ttl
            try:
                pipe = self._redis.pipeline(transaction=False)
                for token, client in mine:
                    pipe.zadd(_key(client), {token: until}, xx=True)
                    pipe.expire(_key(client), int(self._ttl) + 1)
                pipe.execute()
            except (redis.RedisError, OSError):
                log.debug("could not renew stream slots; retrying")


def _key(client: str) -> str:
    return f"relay:slots:{client}"
