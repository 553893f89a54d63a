"""The desk commands on a real demo database: what-if with a desk's simulated clocks finds no
difference where the rules did not change, and demo data needs a workflow it knows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from runtime.settings import get_settings

runner = CliRunner()


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """Settings are cached per process; these tests set the environment per command."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_what_if_under_the_same_desk_changes_no_case(demo_db: Path, tmp_path: Path) -> None:
    desk = tmp_path / "desk"
    assert runner.invoke(app, ["config", "init", str(desk)]).exit_code == 0
    result = runner.invoke(app, ["audit", "what-if", "--desk", str(desk)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert re.search(r"\b0 of (\d+) cases would go differently", result.output)


def test_what_if_refuses_an_unsound_desk(demo_db: Path, tmp_path: Path) -> None:
    desk = tmp_path / "desk"
    assert runner.invoke(app, ["config", "init", str(desk)]).exit_code == 0
    (desk / "calendars.yaml").write_text("calendars: {default: {timezone: Mars/Olympus}}\n", encoding="utf-8")
    result = runner.invoke(app, ["audit", "what-if", "--desk", str(desk)], env={"COLUMNS": "250"})
    assert result.exit_code == 2
    assert f"{desk / 'calendars.yaml'}:1: error: calendar 'default': unknown timezone" in result.output


def test_demo_data_is_refused_for_a_desk_of_another_structure(tmp_path: Path) -> None:
    env = {"DISPUTES_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    chargeback = Path(__file__).resolve().parents[2] / "examples" / "chargeback"
    result = runner.invoke(app, ["--config", str(chargeback), "demo", "--count", "2"], env=env)
    assert result.exit_code == 2
    assert "this desk's workflow 'card_chargeback' has no accept_offer, assign" in re.sub(r"\s+", " ", result.output)
