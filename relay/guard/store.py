"""The shared state of the spend guard, behind one small interface.

Every count, claim, queue and table the guard keeps goes through `Store`, so the
rules (budget.py, idempotency.py, admission.py, ...) never know where the state
lives. Three backends exist:

- `MemoryStore`: one process; every operation runs under one lock (threads, or
  greenlets under gevent), so compound operations are atomic by construction;
- `RedisStore` (redis_store.py): every process and machine; compound operations
  are single Lua scripts, so concurrent creates in many workers never overshoot;
- `SqlStore` (sql_store.py): the run records' database when there is no Redis;
  every operation is one transaction under the guard's lock (SQLite's BEGIN
  IMMEDIATE, PostgreSQL's transaction-scoped advisory lock).

Values are text; expiries are seconds. `take` is the heart of every cap: given
(key, limit, ttl) triples it increments all of them, or none when any is at its
limit, and says which one refused.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Protocol

__all__ = ["Limit", "MemoryStore", "Store"]

Limit = tuple[str, float, float]  # key, limit, ttl seconds


class Store(Protocol):
    kind: str

    def take(self, limits: Sequence[Limit]) -> int: ...
    def give_back(self, keys: Sequence[str]) -> None: ...
    def count(self, key: str) -> float: ...
    def add(self, key: str, amount: float, ttl: float) -> None: ...
    def claim(self, key: str, value: str, ttl: float) -> bool: ...
    def get(self, key: str) -> str | None: ...
    def put(self, key: str, value: str, ttl: float) -> None: ...
    def delete(self, key: str, only_if: str | None = None) -> bool: ...
    def table_set(self, table: str, field: str, value: str) -> None: ...
    def table_get(self, table: str, field: str) -> str | None: ...
    def table_pop(self, table: str, field: str) -> bool: ...
    def table_all(self, table: str) -> dict[str, str]: ...
    def reserve(self, table: str, field: str, value: str, cap: int, queue: str) -> bool: ...
    def enqueue(self, queue: str, item: str) -> int: ...
    def admit(self, queue: str, table: str, cap: int, value: str) -> str | None: ...
    def requeue(self, queue: str, item: str) -> None: ...
    def unqueue(self, queue: str, item: str) -> bool: ...
    def queued(self, queue: str) -> list[str]: ...


class MemoryStore:
    """The Store of one process (see the module docstring)."""

    kind = "memory"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, tuple[str, float]] = {}
        self._tables: dict[str, dict[str, str]] = {}
        self._queues: dict[str, list[tuple[float, str]]] = {}
        self._seq = 0.0

    def _live(self, key: str) -> str | None:
        held = self._values.get(key)
        if held is None:
            return None
        if held[1] <= time.monotonic():
            del self._values[key]
            return None
        return held[0]

    def _set(self, key: str, value: str, ttl: float) -> None:
        self._values[key] = (value, time.monotonic() + ttl)

    def take(self, limits: Sequence[Limit]) -> int:
        with self._lock:
            for index, (key, limit, _ttl) in enumerate(limits):
                if float(self._live(key) or 0) + 1 > limit:
                    return index
            for key, _limit, ttl in limits:
                current = self._live(key)
                if current is None:
                    self._set(key, "1", ttl)
                else:
                    self._values[key] = (str(float(current) + 1), self._values[key][1])
            return -1

    def give_back(self, keys: Sequence[str]) -> None:
        with self._lock:
            for key in keys:
                current = self._live(key)
                if current is not None:
                    self._values[key] = (str(max(0.0, float(current) - 1)), self._values[key][1])

    def count(self, key: str) -> float:
        with self._lock:
            return float(self._live(key) or 0)

    def add(self, key: str, amount: float, ttl: float) -> None:
        with self._lock:
            current = self._live(key)
            if current is None:
                self._set(key, str(amount), ttl)
            else:
                self._values[key] = (str(float(current) + amount), self._values[key][1])

    def claim(self, key: str, value: str, ttl: float) -> bool:
        with self._lock:
            if self._live(key) is not None:
                return False
            self._set(key, value, ttl)
            return True

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._live(key)

    def put(self, key: str, value: str, ttl: float) -> None:
        with self._lock:
            self._set(key, value, ttl)

    def delete(self, key: str, only_if: str | None = None) -> bool:
        with self._lock:
            current = self._live(key)
            if current is None or (only_if is not None and current != only_if):
                return False
            del self._values[key]
            return True

    def table_set(self, table: str, field: str, value: str) -> None:
        with self._lock:
            self._tables.setdefault(table, {})[field] = value

    def table_get(self, table: str, field: str) -> str | None:
        with self._lock:
            return self._tables.get(table, {}).get(field)

    def table_pop(self, table: str, field: str) -> bool:
        with self._lock:
            return self._tables.get(table, {}).pop(field, None) is not None

    def table_all(self, table: str) -> dict[str, str]:
        with self._lock:
            return dict(self._tables.get(table, {}))

    def reserve(self, table: str, field: str, value: str, cap: int, queue: str) -> bool:
        with self._lock:
            rows = self._tables.setdefault(table, {})
            if len(rows) >= cap or self._queues.get(queue):
                return False
            rows[field] = value
            return True

    def enqueue(self, queue: str, item: str) -> int:
        with self._lock:
            self._seq += 1
            items = self._queues.setdefault(queue, [])
            items.append((self._seq, item))
            return len(items)

    def admit(self, queue: str, table: str, cap: int, value: str) -> str | None:
        with self._lock:
            items = self._queues.get(queue)
            rows = self._tables.setdefault(table, {})
            if not items or len(rows) >= cap:
                return None
            _score, item = items.pop(0)
            rows[f"p:{item}"] = value
            return item

    def requeue(self, queue: str, item: str) -> None:
        with self._lock:
            self._queues.setdefault(queue, []).insert(0, (0.0, item))

    def unqueue(self, queue: str, item: str) -> bool:
        with self._lock:
            items = self._queues.get(queue, [])
            for entry in items:
                if entry[1] == item:
                    items.remove(entry)
                    return True
            return False

    def queued(self, queue: str) -> list[str]:
        with self._lock:
            return [item for _score, item in self._queues.get(queue, [])]
