"""`disputes privacy erase`, `audit verify --erasure`, `replay` and `audit export --disclose` on a
real SQLite file: what an operator runs for a data subject's request."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from runtime.bootstrap import build_engine
from runtime.settings import Settings, get_settings
from workflow.model import Actor, NewCase

runner = CliRunner()
MOBILE = "13812345678"


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    monkeypatch.setenv("DISPUTES_DATABASE_URL", url)
    get_settings.cache_clear()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    yield url
    get_settings.cache_clear()


def _file(url: str, consumer: str, *, close: bool) -> str:
    engine = build_engine(Settings(database_url=url, run_ticker=False))
    try:
        actor = Actor(consumer, "consumer")
        complaint = NewCase(
            consumer_id=consumer,
            merchant_id="m-1",
            category="not_received",
            subject=f"张伟 {MOBILE}",
            description="上海市浦东新区世纪大道100号",
            order_ref="TB-1",
            claim_amount=9900,
            currency="CNY",
        )
        case = engine.cases.file(actor=actor, new_case=complaint)
        if close:
            engine.cases.execute(actor=actor, case_id=case.id, name="withdraw")
        return case.id
    finally:
        engine.dispose()


def test_an_operator_erases_a_consumer_and_proves_it(database: str, tmp_path: Path) -> None:
    closed = _file(database, "c-1", close=True)
    still_open = _file(database, "c-1", close=False)
    before = runner.invoke(app, ["replay", closed], env={"COLUMNS": "250"}).output
    assert "consumer c-1 " in before
    version = int(re.search(r"version (\d+)", before).group(1))  # type: ignore[union-attr]
    # The key file sits beside the database (generated on first use).
    assert (tmp_path / "desk.db.keys").exists()

    erased = runner.invoke(app, ["privacy", "erase", "--subject", "c-1", "--basis", "PIPL Art. 47"])
    assert erased.exit_code == 0, erased.output
    assert "1 case erased, 1 case deferred" in erased.output and still_open in erased.output

    shown = runner.invoke(app, ["replay", closed], env={"COLUMNS": "250"})
    # The consumer still has an open case: their id stays until it closes and is erased too.
    # One event more (personal_data_erased), nothing of the texts.
    assert shown.exit_code == 0 and f"version {version + 1} " in shown.output and MOBILE not in shown.output
    verified = runner.invoke(app, ["audit", "verify", "--erasure"])
    assert verified.exit_code == 0, verified.output
    assert "1 erasure in the logs: every erased ref has no value row and no live key" in verified.output

    cleared = runner.invoke(app, ["audit", "export", "--disclose", "-o", str(tmp_path / "x.jsonl")])
    assert cleared.exit_code == 0, cleared.output
    lines = [json.loads(line) for line in (tmp_path / "x.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {line["case_id"] for line in lines if line["kind"] == "disclosure"} == {still_open}

    # A value row put back under the erased case is found and named.
    with sqlite3.connect(tmp_path / "desk.db") as conn:
        conn.execute("INSERT INTO personal_values (ref, case_id, sealed) VALUES (?, ?, ?)", ("0" * 24, closed, b"x"))
    damaged = runner.invoke(app, ["audit", "verify", "--erasure"])
    assert damaged.exit_code == 1 and "value rows remain under a destroyed key" in damaged.output


def test_erasing_an_unknown_subject_is_one_line_and_exit_2(database: str) -> None:
    result = runner.invoke(app, ["privacy", "erase", "--subject", "nobody-here"])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1 and "not found" in result.output
