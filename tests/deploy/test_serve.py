"""`disputes serve --workers N` is refused, with the reason, on SQLite and on a database
behind the code's migrations. (N processes serving on PostgreSQL, and a killed worker
replaced, are shown by tests/deploy/test_many_workers.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from runtime.settings import get_settings

runner = CliRunner()


@pytest.fixture
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_several_workers_on_sqlite_are_refused_with_the_reason(
    fresh_settings: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fresh_settings.setenv("DISPUTES_DATABASE_URL", f"sqlite:///{tmp_path / 'one.db'}")
    result = runner.invoke(app, ["serve", "--workers", "2", "--port", "1"])
    assert result.exit_code == 2
    assert "--workers 2 needs PostgreSQL" in result.output and "SQLite serves one process" in result.output


@pytest.mark.postgres
def test_serve_refuses_a_database_behind_the_migrations(fresh_settings: pytest.MonkeyPatch, pg_empty_url: str) -> None:
    fresh_settings.setenv("DISPUTES_DATABASE_URL", pg_empty_url)
    result = runner.invoke(app, ["serve", "--workers", "2", "--port", "1"])
    assert result.exit_code == 2
    assert "refusing to start" in result.output and "disputes db upgrade" in result.output
