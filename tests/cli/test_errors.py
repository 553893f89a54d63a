"""The command line's edge of the error model: every command, given a user's mistake or an
unusable environment, prints one line naming the problem and exits non-zero, never a traceback.

Three kinds, each over every command it can reach: a case (or mediator) that does not exist, a
broken desk file, and a database that does not answer. The line comes from the one table of
cli/errors.py (or, for the commands whose job is to check, from their own report)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cli import app
from runtime.settings import get_settings

runner = CliRunner()
UNREACHABLE = "postgresql+psycopg://nobody@127.0.0.1:1/none"  # nothing listens on port 1: refused at once
OUT = "{tmp}/out.jsonl"  # a file argument, placed in the test's directory

# Commands that name a case or a mediator, each given one that does not exist.
MISSING = [
    ["replay", "DSP-NOT-THERE"],
    ["replay", "DSP-NOT-THERE", "--seq", "1"],
    ["audit", "export", "--case", "DSP-NOT-THERE", "-o", OUT],
    ["audit", "what-if", "--case", "DSP-NOT-THERE"],
    ["mediators", "update", "med-not-there", "--capacity", "3"],
]
# Every command that opens the engine: the desk in force on the configured database.
ENGINE_COMMANDS = [
    ["serve", "--port", "1"],
    ["worker"],
    ["sla", "tick"],
    ["demo", "--count", "1"],
    ["replay", "DSP-1"],
    ["audit", "verify"],
    ["audit", "export", "-o", OUT],
    ["audit", "checkpoint"],
    ["audit", "what-if"],
    ["report", "merchants"],
    ["report", "hotspots"],
    ["report", "sla"],
    ["report", "satisfaction"],
    ["supervise"],
    ["mediators", "list"],
    ["mediators", "add", "med-new"],
    ["mediators", "update", "med-new", "--capacity", "2"],
    ["mediators", "route"],
    ["db", "backup", "--to", "{tmp}/backup.sqlite"],
    ["outbox", "status"],
    ["outbox", "dispatch"],
    ["webhooks", "list"],
]
# Every command that runs, checks or reads the desk in force.
DESK_COMMANDS = [
    *ENGINE_COMMANDS,
    ["config", "check"],
    ["config", "reload"],
    ["scenario", "run"],
    ["policies", "check"],
    ["policies", "reload"],
    ["db", "restore", "{tmp}/backup.sqlite"],
]
# Every command that opens the database.
DATABASE_COMMANDS = [*ENGINE_COMMANDS, ["db", "upgrade"], ["db", "current"]]


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An empty database at the code's schema, in force for the command line."""
    url = f"sqlite:///{tmp_path / 'disputes.db'}"
    monkeypatch.setenv("DISPUTES_DATABASE_URL", url)
    get_settings.cache_clear()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    yield url
    get_settings.cache_clear()


@pytest.fixture
def broken_desk(database: str, tmp_path: Path) -> Path:
    """The packaged desk written out, with one mistake in its workflow file."""
    desk = tmp_path / "desk"
    assert runner.invoke(app, ["config", "init", str(desk)]).exit_code == 0
    workflow = desk / "workflows" / "consumer_dispute.yaml"
    text = workflow.read_text(encoding="utf-8")
    assert "initial: filed" in text
    workflow.write_text(text.replace("initial: filed", "initial: [filed", 1), encoding="utf-8")
    return desk


def invoke(args: list[str], tmp_path: Path) -> Result:
    return runner.invoke(app, [arg.format(tmp=tmp_path) for arg in args], env={"COLUMNS": "300"})


def one_line(result: Result) -> str:
    """The command failed with one line and no traceback; that line."""
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.parametrize("args", MISSING, ids=lambda args: " ".join(args[:3]))
def test_a_missing_case_is_one_line(args: list[str], database: str, tmp_path: Path) -> None:
    result = invoke(args, tmp_path)
    line = one_line(result)
    assert result.exit_code == 2
    assert "not found" in line and ("DSP-NOT-THERE" in line or "med-not-there" in line), line
    assert not (tmp_path / "out.jsonl").exists()  # nothing half-written either


@pytest.mark.parametrize("args", DESK_COMMANDS, ids=lambda args: " ".join(args[:2]))
def test_a_broken_desk_file_is_one_line_naming_it(args: list[str], broken_desk: Path, tmp_path: Path) -> None:
    result = invoke(["--config", str(broken_desk), *args], tmp_path)
    line = one_line(result)
    assert f"{broken_desk / 'workflows' / 'consumer_dispute.yaml'}:" in line.replace("\n", ""), line
    assert "error" in line


def test_a_broken_desk_given_to_what_if_is_one_line_naming_it(broken_desk: Path, tmp_path: Path) -> None:
    line = one_line(invoke(["audit", "what-if", "--desk", str(broken_desk)], tmp_path))
    assert "consumer_dispute.yaml:" in line


@pytest.mark.parametrize("args", [["intake", "check"], ["intake", "classify", "kettle broken"]], ids=" ".join)
def test_a_broken_intake_file_is_one_line_naming_it(args: list[str], database: str, tmp_path: Path) -> None:
    desk = tmp_path / "desk"
    assert runner.invoke(app, ["config", "init", str(desk)]).exit_code == 0
    rules = desk / "intake" / "classification.yaml"
    rules.write_text("classification: [\n", encoding="utf-8")
    line = one_line(invoke(["--config", str(desk), *args], tmp_path))
    assert f"{rules}:" in line


def test_a_broken_workflow_file_is_one_line_naming_it(broken_desk: Path, tmp_path: Path) -> None:
    line = one_line(invoke(["workflow", "check", str(broken_desk / "workflows" / "consumer_dispute.yaml")], tmp_path))
    assert "consumer_dispute.yaml:" in line


@pytest.mark.parametrize("args", DATABASE_COMMANDS, ids=lambda args: " ".join(args[:2]))
def test_an_unreachable_database_is_one_line(args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPUTES_DATABASE_URL", UNREACHABLE)
    get_settings.cache_clear()
    try:
        result = invoke(args, tmp_path)
    finally:
        get_settings.cache_clear()
    line = one_line(result)
    assert result.exit_code == 2
    assert "database unavailable" in line and "127.0.0.1" in line, line
