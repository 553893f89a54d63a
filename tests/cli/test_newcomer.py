"""What a newcomer meets on the command line: the embedded SQLite database gets its schema
from `disputes serve` and `disputes demo` themselves (PostgreSQL keeps `disputes db
upgrade`), and what the commands print reads as sentences, not Python."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect
from typer.testing import CliRunner, Result

from cli import app
from runtime.settings import get_settings
from tests.support.database import postgres_schema_url
from tests.support.live import free_port

runner = CliRunner()
TOOL = Path(__file__).resolve().parents[2] / "tools" / "verify_export.py"


def invoke(*args: str, url: str) -> Result:
    get_settings.cache_clear()  # settings are cached per process; each command reads its own
    try:
        return runner.invoke(app, list(args), env={"DISPUTES_DATABASE_URL": url, "COLUMNS": "200"})
    finally:
        get_settings.cache_clear()


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_demo_creates_the_schema_of_a_new_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    filed = invoke("demo", "--count", "1", url=url)
    assert filed.exit_code == 0, filed.output
    assert "database schema: empty ->" in filed.output and "demo data: 1 case filed" in filed.output
    assert invoke("db", "current", url=url).exit_code == 0  # at the code's head
    again = invoke("demo", "--if-empty", url=url)
    assert again.exit_code == 0 and "1 case already present" in again.output


def test_serve_creates_the_schema_of_an_empty_sqlite_file(tmp_path: Path) -> None:
    (tmp_path / "empty.db").touch()
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    port = free_port()
    env = {**os.environ, "DISPUTES_DATABASE_URL": url, "DISPUTES_RUN_TICKER": "false"}
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "disputes"), "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=output,
            stderr=output,
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, log.read_text(encoding="utf-8", errors="replace")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
                    assert json.loads(answer.read())["status"] == "ready"
                    break
            except OSError:
                assert time.monotonic() < deadline, "the server did not get ready"
                time.sleep(0.25)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "database schema: empty ->" in log.read_text(encoding="utf-8")
    assert invoke("db", "current", url=url).exit_code == 0


def test_a_sqlite_file_holding_other_tables_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    url = f"sqlite:///{path}"
    for command in (["demo"], ["serve"]):
        refused = invoke(*command, url=url)
        assert refused.exit_code == 2 and "disputes db upgrade" in refused.output, refused.output
    assert _tables(url) == {"notes"}


@pytest.fixture
def empty_postgres() -> Iterator[str]:
    yield from postgres_schema_url()


@pytest.mark.postgres
def test_postgresql_keeps_the_explicit_upgrade(empty_postgres: str) -> None:
    demo = invoke("demo", url=empty_postgres)
    assert demo.exit_code == 2 and "run `disputes db upgrade` first" in demo.output, demo.output
    serve = invoke("serve", url=empty_postgres)
    assert serve.exit_code == 2 and "refusing to start" in serve.output, serve.output
    assert _tables(empty_postgres) == set()


def test_counts_and_the_export_read_as_sentences(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'one.db'}"
    assert invoke("demo", "--count", "1", url=url).exit_code == 0
    checkpoint = invoke("audit", "checkpoint", url=url)
    assert re.search(r"checkpoint #1: 1 case, \d+ events,", checkpoint.output), checkpoint.output
    verified = invoke("audit", "verify", url=url)
    assert re.search(r"the 1 case intact \(\d+ events\).*1 checkpoint verify", " ".join(verified.output.split()))
    exported = invoke("audit", "export", "-o", str(tmp_path / "log.jsonl"), url=url)
    line = " ".join(exported.output.split())
    assert re.search(r"exported 1 case, \d+ events and 1 checkpoint to \S+log.jsonl \(digest [0-9a-f]{16}", line)
    assert "ExportSummary" not in line and "{" not in line
    report = subprocess.run([sys.executable, str(TOOL), str(tmp_path / "log.jsonl")], capture_output=True, text=True)
    assert report.returncode == 0 and re.search(r"1 case, \d+ events: every chain verifies", report.stdout)
    assert "1 checkpoint, signed by" in report.stdout and "case heads" not in report.stdout
    unknown = invoke("audit", "export", "--case", "DSP-NOPE", "-o", str(tmp_path / "none.jsonl"), url=url)
    assert unknown.exit_code == 2 and "not found" in unknown.output and "Traceback" not in unknown.output
    assert not (tmp_path / "none.jsonl").exists()
    classified = invoke("intake", "classify", "收到的耳机是假货", url=url)
    assert "scores counterfeit" in classified.output and "{" not in classified.output.splitlines()[0]
    checked = invoke("config", "check", url=url)
    assert checked.exit_code == 0 and "Rules" not in checked.output and re.search(r"\d+ thresholds", checked.output)
    for output in (checkpoint.output, verified.output, exported.output, checked.output):
        assert not re.search(r"\b1 (cases|events|checkpoints|problems|scenarios)\b", output), output


def test_the_verifier_says_what_it_needs_where_its_packages_are_missing(tmp_path: Path) -> None:
    # -I -S: no site-packages, so neither rfc8785 nor cryptography can be imported.
    missing = subprocess.run(
        [sys.executable, "-I", "-S", str(TOOL), str(tmp_path / "log.jsonl")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "pip install rfc8785 cryptography" in missing.stderr
