"""RELAY_MAX_STREAMS_PER_CLIENT counted across every worker and machine, in Redis.

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

from .limits import StreamSlot, StreamSlots, too_many_streams

__all__ = ["RedisStreamSlots"]

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
