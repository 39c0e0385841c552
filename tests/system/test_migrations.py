"""Migrations run once however many processes start at once (SQLite flock, PostgreSQL advisory lock)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from testbed import ROOT

STARTERS = 4


def _start_together(env: dict[str, str]) -> None:
    processes = [subprocess.Popen([sys.executable, "-m", "relay.records", "upgrade"], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for _ in range(STARTERS)]
    for process in processes:
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0, output
        assert "is up to date" in output


def _revision(url: str) -> list[str]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = [row[0] for row in connection.execute(sa.text("SELECT version_num FROM alembic_version"))]
        connection.execute(sa.text("SELECT id, visitor, kept FROM runs"))
    engine.dispose()
    return rows


def test_sqlite_is_migrated_once_by_processes_starting_together(tmp_path: Path) -> None:
    import os

    _start_together({**os.environ, "RELAY_INSTANCE_PATH": str(tmp_path)})
    assert _revision(f"sqlite:///{tmp_path / 'relay.db'}") == ["0002"]
    mode = sa.create_engine(f"sqlite:///{tmp_path / 'relay.db'}").connect().exec_driver_sql("PRAGMA journal_mode")
    assert mode.scalar() == "wal"


def test_postgresql_is_migrated_once_by_processes_starting_together(tmp_path: Path, postgres_url: str) -> None:
    import os

    _start_together({**os.environ, "RELAY_INSTANCE_PATH": str(tmp_path), "DATABASE_URL": postgres_url})
    assert _revision(postgres_url.replace("postgresql://", "postgresql+pg8000://")) == ["0002"]
