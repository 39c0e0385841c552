"""The guard's Store on Redis: shared by every worker and machine (REDIS_URL).

Compound operations are Lua scripts, which Redis runs one at a time, so a check
and its increment cannot be split by another process:
- `take`: check every (key, limit) and increment all of them, or none;
- `reserve`: take a running slot only while under the cap and nobody queues;
- `admit`: pop the queue's head into a running slot while under the cap.

Keys live under `relay:guard:`; queues are sorted sets scored by a counter (FIFO).
"""

from __future__ import annotations

from collections.abc import Sequence

import redis

__all__ = ["RedisStore"]

_PREFIX = "relay:guard:"

_TAKE = """
for i = 1, #KEYS do
  local held = tonumber(redis.call('GET', KEYS[i]) or '0')
  if held + 1 > tonumber(ARGV[2 * i - 1]) then return i - 1 end
end
for i = 1, #KEYS do
  local value = redis.call('INCR', KEYS[i])
  if value == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[2 * i]) end
end
return -1
"""

_GIVE_BACK = """
for i = 1, #KEYS do
  if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
end
return 0
"""

_RESERVE = """
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
if redis.call('ZCARD', KEYS[2]) > 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

_ENQUEUE = """
local seq = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], seq, ARGV[1])
return redis.call('ZRANK', KEYS[1], ARGV[1]) + 1
"""

_ADMIT = """
if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[1]) then return false end
local head = redis.call('ZPOPMIN', KEYS[1])
if #head == 0 then return false end
redis.call('HSET', KEYS[2], 'p:' .. head[1], ARGV[2])
return head[1]
"""

_REQUEUE = """
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local score = 0
if #first > 0 then score = tonumber(first[2]) - 1 end
redis.call('ZADD', KEYS[1], score, ARGV[1])
return 1
"""

_DELETE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class RedisStore:
    kind = "redis"

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._take = client.register_script(_TAKE)
        self._give = client.register_script(_GIVE_BACK)
        self._reserve = client.register_script(_RESERVE)
        self._enqueue = client.register_script(_ENQUEUE)
        self._admit = client.register_script(_ADMIT)
        self._requeue = client.register_script(_REQUEUE)
        self._delete_if = client.register_script(_DELETE_IF)

    def take(self, limits: Sequence[tuple[str, float, float]]) -> int:
        if not limits:
            return -1
        args: list[float | int] = []
        for _key, limit, ttl in limits:
            args += [limit, _ms(ttl)]
        return int(self._take(keys=[_PREFIX + key for key, _l, _t in limits], args=args))

    def give_back(self, keys: Sequence[str]) -> None:
        if keys:
            self._give(keys=[_PREFIX + key for key in keys])

    def count(self, key: str) -> float:
        return float(_text(self._redis.get(_PREFIX + key)) or 0)

    def add(self, key: str, amount: float, ttl: float) -> None:
        pipe = self._redis.pipeline()
        pipe.incrbyfloat(_PREFIX + key, amount)
        pipe.pexpire(_PREFIX + key, _ms(ttl))  # keys are per window: renewing is harmless
        pipe.execute()

    def claim(self, key: str, value: str, ttl: float) -> bool:
        return bool(self._redis.set(_PREFIX + key, value, px=_ms(ttl), nx=True))

    def get(self, key: str) -> str | None:
        return _text(self._redis.get(_PREFIX + key))

    def put(self, key: str, value: str, ttl: float) -> None:
        self._redis.set(_PREFIX + key, value, px=_ms(ttl))

    def delete(self, key: str, only_if: str | None = None) -> bool:
        if only_if is None:
            return bool(self._redis.delete(_PREFIX + key))
        return bool(self._delete_if(keys=[_PREFIX + key], args=[only_if]))

    def table_set(self, table: str, field: str, value: str) -> None:
        self._redis.hset(_PREFIX + table, field, value)

    def table_get(self, table: str, field: str) -> str | None:
        return _text(self._redis.hget(_PREFIX + table, field))

    def table_pop(self, table: str, field: str) -> bool:
        return bool(self._redis.hdel(_PREFIX + table, field))

    def table_all(self, table: str) -> dict[str, str]:
        rows = self._redis.hgetall(_PREFIX + table)
        return {str(_text(k)): str(_text(v)) for k, v in rows.items()}

    def reserve(self, table: str, field: str, value: str, cap: int, queue: str) -> bool:
        return bool(self._reserve(keys=[_PREFIX + table, _PREFIX + queue], args=[field, value, cap]))

    def enqueue(self, queue: str, item: str) -> int:
        return int(self._enqueue(keys=[_PREFIX + queue, _PREFIX + queue + ":seq"], args=[item]))

    def admit(self, queue: str, table: str, cap: int, value: str) -> str | None:
        return _text(self._admit(keys=[_PREFIX + queue, _PREFIX + table], args=[cap, value]))

    def requeue(self, queue: str, item: str) -> None:
        self._requeue(keys=[_PREFIX + queue], args=[item])

    def unqueue(self, queue: str, item: str) -> bool:
        return bool(self._redis.zrem(_PREFIX + queue, item))

    def queued(self, queue: str) -> list[str]:
        items: list[bytes] = self._redis.zrange(_PREFIX + queue, 0, -1)  # type: ignore[assignment]
        return [item.decode() for item in items]
