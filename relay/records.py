"""Run records: one row per prediction Relay created, in SQLite or PostgreSQL.

Design:
- SQLAlchemy Core over one `runs` table (schema in relay/migrations, applied by
  Alembic at start under a lock, so several workers starting at once migrate once:
  an flock beside the SQLite file, `pg_advisory_lock` on PostgreSQL).
- SQLite (the default, `<instance>/relay.db`) runs in WAL mode with a busy timeout,
  so several workers on one machine read while one writes. PostgreSQL goes through
  pg8000, a pure-Python driver: its socket I/O is gevent's, so a slow query parks
  one greenlet, never the worker.
- A row is written on create and on each change of status (not per log line); the
  final snapshot is kept with it, so a finished run can be streamed without the hub.
"""

from __future__ import annotations

import contextlib
import fcntl
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

__all__ = ["RunStore", "engine_for", "metadata", "migrate", "seconds_between"]

metadata = sa.MetaData()
runs = sa.Table(
    "runs", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("visitor", sa.String(64), nullable=False),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("version", sa.String(64)),
    sa.Column("input", sa.JSON(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", sa.String(40)),
    sa.Column("started_at", sa.String(40)),
    sa.Column("completed_at", sa.String(40)),
    sa.Column("metrics", sa.JSON()),
    sa.Column("error", sa.Text()),
    sa.Column("output", sa.JSON()),
    sa.Column("snapshot", sa.JSON()),
    sa.Column("kept", sa.JSON()),
    sa.Column("boot_seconds", sa.Float()),
    sa.Column("run_seconds", sa.Float()),
    sa.Column("recorded_at", sa.Float(), nullable=False),
)

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_ADVISORY_KEY = 0x72656C6179  # "relay": one lock id for every Relay process on the database


def database_url(configured: str | None, instance: Path) -> str:
    """The SQLAlchemy URL: Heroku's postgres:// and plain postgresql:// use pg8000."""
    if configured is None:
        return f"sqlite:///{instance / 'relay.db'}"
    return re.sub(r"^(postgres|postgresql)://", "postgresql+pg8000://", configured)


def engine_for(configured: str | None, instance: Path) -> Engine:
    url = database_url(configured, instance)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 10, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, pool_recycle=1800)


@contextlib.contextmanager
def _migration_lock(engine: Engine, connection: Connection) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _ADVISORY_KEY})
        try:
            yield
        finally:
            connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _ADVISORY_KEY})
        return
    database = engine.url.database
    lock_path = Path(f"{database}.migrate.lock") if database and database != ":memory:" else None
    if lock_path is None:
        yield
        return
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; safe to call from many processes at once."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with engine.connect() as connection:
        with _migration_lock(engine, connection):
            connection.commit()  # the advisory lock is per session; Alembic runs its own transaction
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            connection.commit()


def parse_time(text: object) -> float | None:
    """Epoch seconds of a Replicate timestamp (any fraction length, trailing Z), or None."""
    if not isinstance(text, str) or not text:
        return None
    cleaned = re.sub(r"(\.\d{6})\d+", r"\1", text.strip()).replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(cleaned).timestamp()
    except ValueError:
        return None


def seconds_between(start: object, end: object) -> float | None:
    first, last = parse_time(start), parse_time(end)
    if first is None or last is None or last < first:
        return None
    return last - first


class RunStore:
    """Reads and writes of run rows; every method is one short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def created(self, prediction: Mapping[str, Any], visitor: str, model: str, model_input: Any) -> None:
        version = prediction.get("version")
        row = {
            "id": str(prediction["id"]), "visitor": visitor, "model": model,
            "version": version if isinstance(version, str) else None,
            "input": model_input, "status": str(prediction.get("status") or "starting"),
            "created_at": prediction.get("created_at"), "recorded_at": time.time(),
        }
        with self.engine.begin() as connection:
            connection.execute(runs.insert().values(**row))

    def status_changed(self, snapshot: Mapping[str, Any], *, final: bool, kept: Sequence[str] | None = None) -> bool:
        """Write the state a snapshot shows; False when no row was changed.

        A finished row is never written again: a later copy of the final state (from
        another worker, after Replicate removed the data) must not replace kept outputs.
        """
        values: dict[str, Any] = {
            "status": snapshot["status"],
            "started_at": snapshot.get("started_at"),
            "completed_at": snapshot.get("completed_at"),
            "metrics": snapshot.get("metrics"),
            "error": snapshot.get("error"),
        }
        if final:
            metrics = snapshot.get("metrics") or {}
            predict_time = metrics.get("predict_time") if isinstance(metrics, dict) else None
            values["output"] = snapshot.get("output")
            values["kept"] = list(kept or [])
            values["snapshot"] = dict(snapshot)
            values["boot_seconds"] = seconds_between(snapshot.get("created_at"), snapshot.get("started_at"))
            values["run_seconds"] = float(predict_time) if isinstance(predict_time, (int, float)) else \
                seconds_between(snapshot.get("started_at"), snapshot.get("completed_at"))
        with self.engine.begin() as connection:
            result = connection.execute(runs.update().where(
                runs.c.id == snapshot["id"], runs.c.status.in_(("starting", "processing"))).values(**values))
        return bool(result.rowcount)

    def get(self, prediction_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as connection:
            row = connection.execute(runs.select().where(runs.c.id == prediction_id)).mappings().first()
        return dict(row) if row is not None else None

    def for_visitor(self, visitor: str, limit: int = 100) -> list[dict[str, Any]]:
        query = runs.select().where(runs.c.visitor == visitor) \
            .order_by(runs.c.recorded_at.desc(), runs.c.id.desc()).limit(limit)
        with self.engine.connect() as connection:
            return [dict(row) for row in connection.execute(query).mappings()]

    def durations(self, model: str, version: str | None, limit: int = 20) -> list[tuple[float | None, float | None]]:
        """(boot, run) seconds of the latest succeeded runs of the model (of that version when given)."""
        query = sa.select(runs.c.boot_seconds, runs.c.run_seconds) \
            .where(runs.c.model == model, runs.c.status == "succeeded") \
            .order_by(runs.c.recorded_at.desc()).limit(limit)
        if version is not None:
            query = query.where(runs.c.version == version)
        with self.engine.connect() as connection:
            return [(row[0], row[1]) for row in connection.execute(query)]

    def expire(self, before: float) -> list[str]:
        """Delete the rows recorded before `before`; the storage keys of their kept files."""
        with self.engine.begin() as connection:
            old = connection.execute(sa.select(runs.c.id, runs.c.kept).where(runs.c.recorded_at < before))
            rows = list(old)
            if rows:
                connection.execute(runs.delete().where(runs.c.id.in_([row[0] for row in rows])))
        return [key for row in rows for key in (row[1] or [])]

    def close(self) -> None:
        self.engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m relay.records upgrade`: apply migrations to DATABASE_URL (or the instance SQLite)."""
    import argparse
    import os

    parser = argparse.ArgumentParser(prog="python -m relay.records")
    parser.add_argument("command", choices=["upgrade"])
    parser.parse_args(argv)
    instance = Path(os.environ.get("RELAY_INSTANCE_PATH") or Path(__file__).resolve().parent.parent / "instance")
    instance.mkdir(parents=True, exist_ok=True)
    engine = engine_for(os.environ.get("DATABASE_URL") or None, instance)
    migrate(engine)
    print(f"database at {engine.url.render_as_string(hide_password=True)} is up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
