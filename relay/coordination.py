"""What the watchers of several processes must agree on, alone or on Redis.

- a lease per prediction, so exactly one process follows it upstream (and one
  reads its output stream); it expires unless renewed, so when its holder dies
  a process with subscribers takes over within a lease time;
- whether anyone, anywhere, still watches a prediction;
- when a webhook last brought its state (polling waits while webhooks flow);
- small notes a lease holder leaves for whoever takes over (`remember` /
  `recall`: where the output stream reader had got to);
- a shared budget of upstream requests: a token bucket all processes draw
  from, which spreads polls instead of bursting, and a common pause after a 429.
  Within a process the budget is handed out round robin (`FairTurns`): each
  prediction waiting to poll holds one place in a queue, so forty busy
  predictions cannot keep a forty-first from its turn for more than one round.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

import redis

from .errors import HubUnavailable  # re-exported: older imports name it here

__all__ = ["Coordination", "FairTurns", "HubUnavailable", "LocalCoordination", "RedisCoordination"]


class Coordination(Protocol):
    lease_seconds: float

    def hold(self, name: str, prediction_id: str) -> bool: ...
    def release(self, name: str, prediction_id: str) -> None: ...
    def mark_watched(self, prediction_id: str) -> None: ...
    def watched_elsewhere(self, prediction_id: str) -> bool: ...
    def note_push(self, prediction_id: str, quiet: float) -> None: ...
    def quiet_for(self, prediction_id: str) -> float: ...
    def take_budget(self) -> float: ...
    def pause_upstream(self, seconds: float) -> None: ...
    def remember(self, name: str, prediction_id: str, value: str) -> None: ...
    def recall(self, name: str, prediction_id: str) -> str | None: ...
    def forget(self, name: str, prediction_id: str) -> None: ...


class FairTurns:
    """The budget, handed to waiting predictions first come, first served, one place each."""

    def __init__(self, take_budget: Callable[[], float]) -> None:
        self._take_budget = take_budget
        self._queue: deque[str] = deque()
        self._changed = threading.Condition()

    def take(self, prediction_id: str, timeout: float, closing: Callable[[], bool]) -> bool:
        """True when this prediction may poll now; False after `timeout` (it keeps its place)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            if prediction_id not in self._queue:
                self._queue.append(prediction_id)
            while not closing():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                if self._queue[0] != prediction_id:
                    self._changed.wait(left)
                    continue
                wait = self._take_budget()
                if wait <= 0:
                    self._queue.popleft()
                    self._changed.notify_all()
                    return True
                self._changed.wait(min(wait, left))
        self.leave(prediction_id)
        return False

    def leave(self, prediction_id: str) -> None:
        """Give up the place (a watcher that ends); the next in line moves up."""
        with self._changed:
            try:
                self._queue.remove(prediction_id)
            except ValueError:
                return
            self._changed.notify_all()

    def wake(self) -> None:
        """Make every waiter look at `closing` again now."""
        with self._changed:
            self._changed.notify_all()

    def waiting(self) -> int:
        return len(self._queue)


class _Bucket:
    """A token bucket: `rate` tokens a second, at most `burst` saved up."""

    def __init__(self, per_minute: float, burst: float) -> None:
        self.rate = per_minute / 60.0
        self.burst = burst


class LocalCoordination:
    """One process: every lease is ours; the budget is a local token bucket."""

    lease_seconds = 5.0

    def __init__(self, per_minute: float = 1200.0) -> None:
        self._bucket = _Bucket(per_minute, burst=max(1.0, per_minute / 60.0 * 2))
        self._tokens = self._bucket.burst
        self._stamp = time.monotonic()
        self._paused_until = 0.0
        self._pushed: dict[str, float] = {}
        self._notes: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def hold(self, name: str, prediction_id: str) -> bool:
        return True

    def release(self, name: str, prediction_id: str) -> None:
        return None

    def mark_watched(self, prediction_id: str) -> None:
        return None

    def watched_elsewhere(self, prediction_id: str) -> bool:
        return False

    def note_push(self, prediction_id: str, quiet: float) -> None:
        self._pushed[prediction_id] = time.monotonic() + quiet

    def quiet_for(self, prediction_id: str) -> float:
        until = self._pushed.get(prediction_id)
        if until is None:
            return 0.0
        left = until - time.monotonic()
        if left <= 0:
            self._pushed.pop(prediction_id, None)
        return max(0.0, left)

    def take_budget(self) -> float:
        """0 if a request may go now, else the seconds to wait before asking again."""
        with self._lock:
            now = time.monotonic()
            if now < self._paused_until:
                return self._paused_until - now
            self._tokens = min(self._bucket.burst, self._tokens + (now - self._stamp) * self._bucket.rate)
            self._stamp = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self._bucket.rate

    def pause_upstream(self, seconds: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def remember(self, name: str, prediction_id: str, value: str) -> None:
        self._notes[(name, prediction_id)] = value

    def recall(self, name: str, prediction_id: str) -> str | None:
        return self._notes.get((name, prediction_id))

    def forget(self, name: str, prediction_id: str) -> None:
        self._notes.pop((name, prediction_id), None)


_TAKE = """
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if now < paused then return tostring(paused - now) end
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens, stamp = tonumber(state[1] or burst), tonumber(state[2] or now)
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
return tostring(wait)
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisCoordination:
    """The same agreements, shared by every process through Redis."""

    def __init__(self, client: redis.Redis, per_minute: float = 1200.0, lease_seconds: float = 5.0) -> None:
        self._redis = client
        self.lease_seconds = lease_seconds
        self._owner = f"{os.getpid()}-{secrets.token_hex(6)}"
        self._bucket = _Bucket(per_minute, burst=max(1.0, per_minute / 60.0 * 2))
        self._take = client.register_script(_TAKE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def hold(self, name: str, prediction_id: str) -> bool:
        """Take or renew the lease; False while another process holds it (or Redis is away)."""
        try:
            held = self._renew(keys=[f"relay:{{{prediction_id}}}:lease:{name}"],
                               args=[self._owner, int(self.lease_seconds * 1000)])
        except (redis.RedisError, OSError):
            return False
        return bool(held)

    def release(self, name: str, prediction_id: str) -> None:
        try:
            self._release(keys=[f"relay:{{{prediction_id}}}:lease:{name}"], args=[self._owner])
        except (redis.RedisError, OSError):
            pass  # it expires by itself

    def mark_watched(self, prediction_id: str) -> None:
        try:
            self._redis.set(f"relay:{{{prediction_id}}}:watched", "1", px=int(self.lease_seconds * 2000))
        except (redis.RedisError, OSError):
            pass

    def watched_elsewhere(self, prediction_id: str) -> bool:
        try:
            return bool(self._redis.exists(f"relay:{{{prediction_id}}}:watched"))
        except (redis.RedisError, OSError):
            return True  # unsure: keep following rather than drop subscribers

    def note_push(self, prediction_id: str, quiet: float) -> None:
        try:
            self._redis.set(f"relay:{{{prediction_id}}}:pushed", "1", px=max(1, int(quiet * 1000)))
        except (redis.RedisError, OSError):
            pass

    def quiet_for(self, prediction_id: str) -> float:
        try:
            left = self._redis.pttl(f"relay:{{{prediction_id}}}:pushed")
        except (redis.RedisError, OSError):
            return 0.0
        return max(0.0, float(left) / 1000.0) if isinstance(left, int) and left > 0 else 0.0

    def take_budget(self) -> float:
        try:
            wait = self._take(keys=["relay:budget", "relay:budget:paused"],
                              args=[self._bucket.rate, self._bucket.burst, time.time()])
        except (redis.RedisError, OSError):
            return 0.0  # Redis away: let the watcher's own backoff pace it
        return float(wait)

    def pause_upstream(self, seconds: float) -> None:
        try:
            self._redis.set("relay:budget:paused", str(time.time() + seconds), px=int(seconds * 1000) + 1)
        except (redis.RedisError, OSError):
            pass

    def remember(self, name: str, prediction_id: str, value: str) -> None:
        try:
            self._redis.set(f"relay:{{{prediction_id}}}:note:{name}", value, ex=3600)
        except (redis.RedisError, OSError):
            pass

    def recall(self, name: str, prediction_id: str) -> str | None:
        try:
            value = self._redis.get(f"relay:{{{prediction_id}}}:note:{name}")
        except (redis.RedisError, OSError):
            return None
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        return value if isinstance(value, str) else None

    def forget(self, name: str, prediction_id: str) -> None:
        try:
            self._redis.delete(f"relay:{{{prediction_id}}}:note:{name}")
        except (redis.RedisError, OSError):
            pass  # it expires
