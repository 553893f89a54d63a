"""Command-line fixtures: a demo database filed once per module by `disputes demo`, copied per test."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from runtime.settings import get_settings

runner = CliRunner()


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One demo database per module (filing 60 cases takes seconds); tests get copies."""
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DISPUTES_DATABASE_URL", f"sqlite:///{path}")
        get_settings.cache_clear()
        assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
        result = runner.invoke(app, ["demo"])
        assert result.exit_code == 0, result.output
    get_settings.cache_clear()
    yield path


@pytest.fixture
def demo_db(demo_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "demo.db"
    with sqlite3.connect(demo_template) as source, sqlite3.connect(path) as target:
        source.backup(target)
    # The keys that wrap the cases' data keys travel with the database (docs/privacy.md).
    shutil.copy(demo_template.with_name("demo.db.keys"), path.with_name("demo.db.keys"))
    monkeypatch.setenv("DISPUTES_DATABASE_URL", f"sqlite:///{path}")
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()
