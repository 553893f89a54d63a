"""`disputes serve --workers N`: N worker processes on PostgreSQL, a dead one replaced;
refused with a clear message on SQLite and on a database behind the code's migrations."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from api.settings import get_settings
from bench.cluster import deployment_env, run_cli, serve
from bench.lifecycles import CaseRun, LifecycleClient, drive
from bench.server import Client

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


@pytest.mark.postgres
def test_serve_with_workers_runs_that_many_processes_and_replaces_a_dead_one(pg_empty_url: str) -> None:
    env = deployment_env(pg_empty_url)
    run_cli(env, "db", "upgrade")
    with serve(env, 2) as server:
        first = server.wait_workers()
        assert len(first) == 2 and server.process.pid not in first
        # The log names the database without any password.
        assert "serving on http://127.0.0.1" in server.output()
        books = drive(server.port, env["DISPUTES_JWT_SECRET"], [CaseRun.make(i, "serve") for i in range(6)])
        assert not books.unacked and not books.refused and len(books.acks) > 6
        victim = server.kill_worker(first[0])
        second = server.wait_workers()
        assert len(second) == 2 and victim not in second and first[1] in second  # only the dead one replaced
        # Still serving: the cases filed before are there for the replacement workers too.
        client = LifecycleClient(server.port, env["DISPUTES_JWT_SECRET"])
        token = client.token("aud-1", "auditor")
        for _ in range(4):  # new connections: whichever worker accepts them
            with Client(server.port) as http:
                status, _, body = http.get("/v1/cases?limit=50", token)
                assert status == 200 and len(json.loads(body)["data"]) == 6
