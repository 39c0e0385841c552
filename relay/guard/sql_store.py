"""The guard's Store in the run records' database: every worker sharing it agrees (no Redis needed).

Used when REDIS_URL is unset: the gunicorn workers of one machine share the SQLite
file in the instance folder, and several machines can share a DATABASE_URL
PostgreSQL. Three tables (relay/migrations/versions/0002_guard.py):
- `guard_values`: key -> text value with an expiry (wall-clock seconds, the same in
  every process); an expired row counts as absent and is overwritten in place;
- `guard_rows`: the named tables (running slots, viewer marks);
- `guard_queue`: queue items ordered by `position` (enqueue: after the last;
  requeue: before the first).

Atomicity: every operation is one transaction, and every transaction that writes
first takes the guard's one lock, so a check and the write it decides can never be
split by another worker: `pg_advisory_xact_lock` on PostgreSQL (freed at commit),
`BEGIN IMMEDIATE` on SQLite (the database's write lock from the first statement;
others wait up to the busy timeout). Operations are a few short statements, so the
lock is held for milliseconds. The engine is our own (made by records.engine_for,
so the same URL and SQLite settings as the run records) because SQLite's
transactions are switched to explicit BEGIN IMMEDIATE on its connections.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..records import metadata

__all__ = ["SqlStore", "guard_queue", "guard_rows", "guard_values"]

guard_values = sa.Table(
    "guard_values", metadata,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("value", sa.Text(), nullable=False),
    sa.Column("expires", sa.Float(), nullable=False),
)
guard_rows = sa.Table(
    "guard_rows", metadata,
    sa.Column("tbl", sa.String(255), primary_key=True),
    sa.Column("field", sa.String(255), primary_key=True),
    sa.Column("value", sa.Text(), nullable=False),
)
guard_queue = sa.Table(
    "guard_queue", metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("queue", sa.String(255), nullable=False),
    sa.Column("item", sa.String(255), nullable=False),
    sa.Column("position", sa.Float(), nullable=False),
)

_LOCK_KEY = 0x72656C6179 + 1  # next to the migration lock's id ("relay")
_v, _r, _q = guard_values.c, guard_rows.c, guard_queue.c


def explicit_transactions(engine: Engine) -> Engine:
    """On SQLite, make every transaction of `engine` a BEGIN IMMEDIATE (the write lock at once)."""
    if engine.dialect.name == "sqlite":
        @sa.event.listens_for(engine, "connect")
        def _manual(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # pysqlite: no implicit BEGIN of its own

        @sa.event.listens_for(engine, "begin")
        def _immediate(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
    return engine


class SqlStore:
    """The Store on SQLAlchemy (see the module docstring)."""

    kind = "database"

    def __init__(self, engine: Engine) -> None:
        self.engine = explicit_transactions(engine)
        self._postgres = engine.dialect.name == "postgresql"

    @contextmanager
    def _locked(self) -> Iterator[Connection]:
        with self.engine.begin() as connection:
            if self._postgres:
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
            yield connection

    # -- values ------------------------------------------------------------------------------
    @staticmethod
    def _live(connection: Connection, key: str, now: float) -> str | None:
        row = connection.execute(sa.select(_v.value, _v.expires).where(_v.key == key)).first()
        return None if row is None or row.expires <= now else str(row.value)

    @staticmethod
    def _set(connection: Connection, key: str, value: str, expires: float) -> None:
        changed = connection.execute(guard_values.update().where(_v.key == key)
                                     .values(value=value, expires=expires)).rowcount
        if not changed:
            connection.execute(guard_values.insert().values(key=key, value=value, expires=expires))

    @staticmethod
    def _change(connection: Connection, key: str, value: str) -> None:
        connection.execute(guard_values.update().where(_v.key == key).values(value=value))

    def take(self, limits: Sequence[tuple[str, float, float]]) -> int:
        now = time.time()
        with self._locked() as connection:
            held = [self._live(connection, key, now) for key, _limit, _ttl in limits]
            for index, ((_key, limit, _ttl), current) in enumerate(zip(limits, held, strict=True)):
                if float(current or 0) + 1 > limit:
                    return index
            for (key, _limit, ttl), current in zip(limits, held, strict=True):
                if current is None:
                    self._set(connection, key, "1", now + ttl)
                else:
                    self._change(connection, key, str(float(current) + 1))
            return -1

    def give_back(self, keys: Sequence[str]) -> None:
        now = time.time()
        with self._locked() as connection:
            for key in keys:
                current = self._live(connection, key, now)
                if current is not None:
                    self._change(connection, key, str(max(0.0, float(current) - 1)))

    def count(self, key: str) -> float:
        with self.engine.begin() as connection:
            return float(self._live(connection, key, time.time()) or 0)

    def add(self, key: str, amount: float, ttl: float) -> None:
        now = time.time()
        with self._locked() as connection:
            current = self._live(connection, key, now)
            if current is None:
                self._set(connection, key, str(amount), now + ttl)
            else:
                self._change(connection, key, str(float(current) + amount))

    def claim(self, key: str, value: str, ttl: float) -> bool:
        now = time.time()
        with self._locked() as connection:
            if self._live(connection, key, now) is not None:
                return False
            self._set(connection, key, value, now + ttl)
            return True

    def get(self, key: str) -> str | None:
        with self.engine.begin() as connection:
            return self._live(connection, key, time.time())

    def put(self, key: str, value: str, ttl: float) -> None:
        with self._locked() as connection:
            self._set(connection, key, value, time.time() + ttl)

    def delete(self, key: str, only_if: str | None = None) -> bool:
        with self._locked() as connection:
            current = self._live(connection, key, time.time())
            if current is None or (only_if is not None and current != only_if):
                return False
            connection.execute(guard_values.delete().where(_v.key == key))
            return True

    def sweep(self) -> int:
        """Delete expired values (they are already ignored); how many went."""
        with self._locked() as connection:
            return int(connection.execute(guard_values.delete().where(_v.expires <= time.time())).rowcount)

    # -- tables ------------------------------------------------------------------------------
    def table_set(self, table: str, field: str, value: str) -> None:
        with self._locked() as connection:
            self._row_set(connection, table, field, value)

    @staticmethod
    def _row_set(connection: Connection, table: str, field: str, value: str) -> None:
        where = (_r.tbl == table) & (_r.field == field)
        if not connection.execute(guard_rows.update().where(where).values(value=value)).rowcount:
            connection.execute(guard_rows.insert().values(tbl=table, field=field, value=value))

    def table_get(self, table: str, field: str) -> str | None:
        with self.engine.begin() as connection:
            value = connection.execute(sa.select(_r.value).where((_r.tbl == table) & (_r.field == field))).scalar()
            return None if value is None else str(value)

    def table_pop(self, table: str, field: str) -> bool:
        with self._locked() as connection:
            where = (_r.tbl == table) & (_r.field == field)
            return bool(connection.execute(guard_rows.delete().where(where)).rowcount)

    def table_all(self, table: str) -> dict[str, str]:
        with self.engine.begin() as connection:
            rows = connection.execute(sa.select(_r.field, _r.value).where(_r.tbl == table)).all()
            return {str(row.field): str(row.value) for row in rows}

    @staticmethod
    def _size(connection: Connection, table: str) -> int:
        query = sa.select(sa.func.count()).select_from(guard_rows).where(_r.tbl == table)
        return int(connection.execute(query).scalar() or 0)

    @staticmethod
    def _queue_length(connection: Connection, queue: str) -> int:
        query = sa.select(sa.func.count()).select_from(guard_queue).where(_q.queue == queue)
        return int(connection.execute(query).scalar() or 0)

    def reserve(self, table: str, field: str, value: str, cap: int, queue: str) -> bool:
        with self._locked() as connection:
            if self._size(connection, table) >= cap or self._queue_length(connection, queue):
                return False
            self._row_set(connection, table, field, value)
            return True

    # -- the queue ---------------------------------------------------------------------------
    def _place(self, connection: Connection, queue: str, item: str, last: bool) -> None:
        edge = sa.func.max(_q.position) if last else sa.func.min(_q.position)
        current = connection.execute(sa.select(edge).where(_q.queue == queue)).scalar()
        position = (0.0 if current is None else float(current)) + (1.0 if last else -1.0)
        connection.execute(guard_queue.insert().values(queue=queue, item=item, position=position))

    def enqueue(self, queue: str, item: str) -> int:
        with self._locked() as connection:
            self._place(connection, queue, item, last=True)
            return self._queue_length(connection, queue)

    def admit(self, queue: str, table: str, cap: int, value: str) -> str | None:
        with self._locked() as connection:
            head = connection.execute(sa.select(_q.id, _q.item).where(_q.queue == queue)
                                      .order_by(_q.position, _q.id).limit(1)).first()
            if head is None or self._size(connection, table) >= cap:
                return None
            connection.execute(guard_queue.delete().where(_q.id == head.id))
            self._row_set(connection, table, f"p:{head.item}", value)
            return str(head.item)

    def requeue(self, queue: str, item: str) -> None:
        with self._locked() as connection:
            self._place(connection, queue, item, last=False)

    def unqueue(self, queue: str, item: str) -> bool:
        with self._locked() as connection:
            first = connection.execute(sa.select(_q.id).where((_q.queue == queue) & (_q.item == item))
                                       .order_by(_q.position).limit(1)).scalar()
            if first is None:
                return False
            connection.execute(guard_queue.delete().where(_q.id == first))
            return True

    def queued(self, queue: str) -> list[str]:
        with self.engine.begin() as connection:
            rows = connection.execute(sa.select(_q.item).where(_q.queue == queue).order_by(_q.position, _q.id))
            return [str(item) for item in rows.scalars()]
