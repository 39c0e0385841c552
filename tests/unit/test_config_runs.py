"""The settings of run records and kept outputs (docs/configuration.md), and the database URL Relay builds."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.config import ConfigError, Settings
from relay.records import database_url


def test_defaults_keep_outputs_for_thirty_days_in_the_instance_folder() -> None:
    settings = Settings.from_env({})
    assert settings.database_url is None and settings.storage_url is None
    assert settings.keep_outputs is True and settings.retention_days == 30.0


def test_values_are_read_and_fractional_days_accepted() -> None:
    settings = Settings.from_env({"DATABASE_URL": "postgres://u:p@db:5432/relay", "RELAY_STORAGE_URL": "s3://b/p",
                                  "RELAY_KEEP_OUTPUTS": "0", "RELAY_RETENTION_DAYS": "0.5"})
    assert settings.database_url == "postgres://u:p@db:5432/relay" and settings.storage_url == "s3://b/p"
    assert settings.keep_outputs is False and settings.retention_days == 0.5


@pytest.mark.parametrize(("name", "value"), [("DATABASE_URL", "mysql://x/y"), ("RELAY_STORAGE_URL", "ftp://x"),
                                             ("RELAY_RETENTION_DAYS", "-1"), ("RELAY_RETENTION_DAYS", "soon")])
def test_bad_values_fail_at_start_by_name(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_heroku_and_plain_postgres_urls_use_the_pure_python_driver(tmp_path: Path) -> None:
    assert database_url("postgres://u:p@h:5/d", tmp_path) == "postgresql+pg8000://u:p@h:5/d"
    assert database_url("postgresql://u@h/d", tmp_path) == "postgresql+pg8000://u@h/d"
    assert database_url(None, tmp_path) == f"sqlite:///{tmp_path / 'relay.db'}"
