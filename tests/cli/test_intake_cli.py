"""`disputes report`, `disputes mediators`, `disputes supervise` and `disputes intake` on a real SQLite file."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cases.review import flag_case, submit_review
from cli import app
from cli.common import out
from runtime.bootstrap import build_engine
from runtime.settings import get_settings
from tests.support.actors import CONSUMER
from tests.support.builders import new_case
from workflow.model import Actor

runner = CliRunner()


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "desk.db"
    monkeypatch.setenv("DISPUTES_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.setenv("COLUMNS", "200")
    # The CLI's console is made at import (another test module may have imported it first, at
    # the default width): tables and paths must not wrap here.
    monkeypatch.setattr(out, "width", 200)
    get_settings.cache_clear()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    yield path
    get_settings.cache_clear()


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_mediators_route_cases_and_reports_print_and_write_csv(database: Path, tmp_path: Path) -> None:
    assert "med-li" in run(
        "mediators",
        "add",
        "med-li",
        "--name",
        "Li",
        "--categories",
        "counterfeit,other",
        "--languages",
        "zh",
        "--capacity",
        "3",
        "--calendar",
        "24x7",
    )
    bad = runner.invoke(app, ["mediators", "add", "med-x", "--categories", "shoes"])
    assert bad.exit_code == 2 and "unknown categories: shoes" in bad.output
    service = build_engine(get_settings()).cases
    filed = service.file(actor=CONSUMER, new_case=new_case(category="", subject="买到假货", description="防伪码查不到"))
    waiting = service.file(actor=CONSUMER, new_case=new_case(subject="kettle broke", description="no heat"))
    service.db.dispose()
    assert filed.mediator_id == "med-li" and waiting.mediator_id is None
    listed = run("mediators", "list")
    assert "med-li" in listed and "2/3" in listed  # a counterfeit case weighs 2
    assert "capacity 5" in run(
        "mediators", "update", "med-li", "--capacity", "5", "--categories", "*", "--languages", "zh,en"
    )
    assert "1 waiting case assigned" in run("mediators", "route")
    out_csv = tmp_path / "merchants.csv"
    printed = run("report", "merchants", "--csv", str(out_csv))
    assert "m-1" in printed
    with out_csv.open(encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:3] == ["merchant", "complaints", "top category"] and rows[1][:2] == ["m-1", "2"]
    assert "counterfeit" in run("report", "hotspots")
    assert "assignment" in run("report", "sla")
    assert "ratings" in run("report", "satisfaction")
    backwards = runner.invoke(app, ["report", "sla", "--since", "2026-03-05", "--until", "2026-03-01"])
    assert backwards.exit_code == 2 and "until must be after since" in backwards.output
    assert "flagged: -" in run("supervise")


def test_intake_check_and_classify(database: Path, tmp_path: Path) -> None:
    checked = run("intake", "check")
    assert "classification.yaml: ok (7 categories" in checked and "supervision.yaml: ok" in checked
    assert "review.yaml: ok (2 reviewers, 6 redaction patterns, 4 rubric items)" in checked
    shown = run("intake", "classify", "商家虚假宣传", "--description", "说是全网最低价")
    assert "category false_advertising" in shown and "虚假宣传" in shown
    broken = tmp_path / "intake"
    broken.mkdir()
    (broken / "priority.yaml").write_text("priority:\n  levels: {normal: {weight: 1}}\n  default: high\n")
    failed = runner.invoke(app, ["intake", "check", str(tmp_path)])
    assert failed.exit_code == 1 and f"{broken / 'priority.yaml'}:3:" in failed.output


def test_sample_reviews_deals_closed_cases_and_the_review_report_prints_and_writes_csv(
    database: Path, tmp_path: Path
) -> None:
    run("mediators", "add", "med-li", "--name", "Li", "--categories", "*", "--languages", "*", "--calendar", "24x7")
    engine = build_engine(get_settings())
    service = engine.cases
    case = service.file(actor=CONSUMER, new_case=new_case(description="电话13812345678"))
    mediator = Actor("med-li", "mediator")
    assert case.mediator_id == "med-li"  # the router assigned it on filing
    service.execute(actor=Actor("mu-1", "merchant", merchant_id="m-1"), case_id=case.id, name="accept_claim")
    service.execute(actor=mediator, case_id=case.id, name="close")
    printed = run("sample-reviews")
    assert case.id in printed and "reviewer-1, reviewer-2" in printed and "1 case newly dealt" in printed
    assert "0 cases newly dealt" in run("sample-reviews")  # the same draw; nothing dealt twice
    scores = {"lawful_basis": 5, "fairness": 4, "timeliness": 3, "clarity": 2}
    submit_review(service, engine.triage.review, Actor("reviewer-1", "reviewer"), case.id, scores=scores)
    flag_case(service, Actor("reviewer-1", "reviewer"), case.id, reason="看一下")
    service.db.dispose()
    out_csv = tmp_path / "reviews.csv"
    printed = run("report", "reviews", "--csv", str(out_csv))
    assert f"flagged {case.id} by reviewer-1" in printed and "open" in printed
    with out_csv.open(encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["group", "key", "reviews", "average", "lawful_basis", "fairness", "timeliness", "clarity"]
    assert ["mediator", "med-li", "1", "3.5", "5", "4", "3", "2"] in rows
    bad = runner.invoke(app, ["sample-reviews", "--since", "monday"])
    assert bad.exit_code == 2
