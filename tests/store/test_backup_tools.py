"""The storage half of backups (store/backup.py) where no database is needed: finding the
PostgreSQL client programs, and the URLs handed to them."""

from __future__ import annotations

from pathlib import Path

import pytest

from store.backup import kind_of, libpq_uri, pg_tool, sqlite_file
from store.errors import BackupError


def test_a_missing_pg_dump_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BackupError, match="pg_dump is not on PATH: install the PostgreSQL client"):
        pg_tool("pg_dump")


def test_the_client_programs_get_a_libpq_uri_with_the_search_path() -> None:
    url = "postgresql+psycopg://app:s3cret@db.internal:5433/disputes?options=-csearch_path%3Ddesk_a"
    assert libpq_uri(url) == "postgresql://app:s3cret@db.internal:5433/disputes?options=-csearch_path%3Ddesk_a"


def test_only_sqlite_and_postgresql_files_are_backed_up() -> None:
    assert kind_of("sqlite:///x.db") == "sqlite"
    assert kind_of("postgresql+psycopg://h/d") == "postgresql"
    with pytest.raises(BackupError, match="cannot back up a mysql database"):
        kind_of("mysql://h/d")
    with pytest.raises(BackupError, match="in-memory"):
        sqlite_file("sqlite://")
