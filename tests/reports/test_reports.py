"""Report figures against values computed by hand on a small generated data set (both backends):
the data set, and what each case contributes, are described in tests/support/report_data.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from audit.chains import verify_case
from cases.service import CaseService
from cases.triage import IntakePaths, Triage
from reports.hotspots import hotspots_report
from reports.merchants import merchants_report
from reports.satisfaction import satisfaction_report
from reports.sla import percentile, sla_report
from reports.supervision import evaluate_merchants
from tests.support.actors import AUDITOR, CONSUMER, MERCHANT, T0
from tests.support.builders import make_clocked_service, new_case
from tests.support.report_data import END, T1, build
from workflow.errors import PolicyDeniedError


@pytest.fixture
def data(db_url: str) -> Iterator[tuple[CaseService, dict[str, str]]]:
    service = make_clocked_service(db_url, start=T0 - timedelta(days=7))
    ids = build(service)
    yield service, ids
    service.db.dispose()


def test_merchant_figures(data: tuple[CaseService, dict[str, str]]) -> None:
    service, _ = data
    rules = Triage.load().supervision
    report = merchants_report(service.db, rules, since=T0, until=END).to_dict()
    m1, m2 = report["data"]
    assert m1["merchant_id"] == "m-1" and m1["complaints"] == 4
    assert m1["by_category"] == [
        {"category": "product_quality", "complaints": 2, "percent": 50.0},
        {"category": "counterfeit", "complaints": 1, "percent": 25.0},
        {"category": "not_received", "complaints": 1, "percent": 25.0},
    ]
    assert (m1["response_clocks"], m1["response_breaches"], m1["response_breach_percent"]) == (3, 1, 33.33)
    assert (m1["decided"], m1["decided_against"], m1["decided_against_percent"]) == (2, 2, 100.0)
    assert m1["settled_by_agreement"] == 0  # c1's settlement was reopened: it no longer stands
    assert (m1["settlements"], m1["reopened"], m1["reopen_percent"], m1["honoured_percent"]) == (3, 1, 33.33, 66.67)
    # (c2 48h10m + c1 5h + c3 1h10m) / 3
    assert m1["average_settle_seconds"] == (173400 + 18000 + 4200) // 3
    assert m1["flagged"] is False and m1["flag"] is None
    assert m2["merchant_id"] == "m-2" and m2["complaints"] == 1
    assert (m2["response_clocks"], m2["response_breaches"], m2["response_breach_percent"]) == (1, 0, 0.0)
    assert (m2["decided"], m2["decided_against"], m2["decided_against_percent"]) == (1, 0, 0.0)
    assert (m2["settlements"], m2["reopen_percent"], m2["average_settle_seconds"]) == (0, None, 15000)
    only = merchants_report(service.db, rules, since=T0, until=END, merchant_id="m-2").to_dict()["data"]
    assert [r["merchant_id"] for r in only] == ["m-2"]


def test_hotspots_compare_weeks_and_periods(data: tuple[CaseService, dict[str, str]]) -> None:
    service, _ = data
    report = hotspots_report(service.db, service.calendars(), since=T0, until=END).to_dict()
    assert report["timezone"] == "Asia/Shanghai"
    # Biggest change first, then most complaints.
    assert report["data"] == [
        {
            "merchant_id": "m-1",
            "category": "product_quality",
            "complaints": 2,
            "previous_period": 1,
            "change": 1,
            "change_percent": 100.0,
        },
        {
            "merchant_id": "m-1",
            "category": "counterfeit",
            "complaints": 1,
            "previous_period": 0,
            "change": 1,
            "change_percent": None,
        },
        {
            "merchant_id": "m-1",
            "category": "not_received",
            "complaints": 1,
            "previous_period": 0,
            "change": 1,
            "change_percent": None,
        },
        {
            "merchant_id": "m-2",
            "category": "other",
            "complaints": 1,
            "previous_period": 0,
            "change": 1,
            "change_percent": None,
        },
    ]
    quality = [w for w in report["weeks"] if w["category"] == "product_quality"]
    assert quality == [
        {
            "merchant_id": "m-1",
            "category": "product_quality",
            "week": "2026-W10",
            "complaints": 2,
            "previous_week": 1,
            "change": 1,
        }
    ]


def test_sla_share_met_median_and_p90(data: tuple[CaseService, dict[str, str]]) -> None:
    service, _ = data
    report = sla_report(service.db, service.calendars(), since=T0, until=END).to_dict()
    rows = {r["key"]: r for r in report["by_clock"]}
    assert rows["assignment"] == {
        "key": "assignment",
        "runs": 4,
        "met": 4,
        "breached": 0,
        "met_percent": 100.0,
        "median_seconds": 600.0,
        "p90_seconds": 600,
    }
    assert rows["merchant_response"] == {
        "key": "merchant_response",
        "runs": 4,
        "met": 3,
        "breached": 1,
        "met_percent": 75.0,
        "median_seconds": 3600.0,
        "p90_seconds": 172800,
    }
    assert (rows["resolution"]["runs"], rows["resolution"]["median_seconds"]) == (1, 10800.0)
    assert rows["fulfilment"] == {
        "key": "fulfilment",
        "runs": 3,
        "met": 3,
        "breached": 0,
        "met_percent": 100.0,
        "median_seconds": 3600.0,
        "p90_seconds": 24600,
    }
    assert (rows["ruling"]["runs"], rows["ruling"]["p90_seconds"]) == (1, 3600)
    mediators = {r["key"]: r for r in report["by_mediator"]}
    assert mediators["med-1"] == {
        "key": "med-1",
        "runs": 10,
        "met": 9,
        "breached": 1,
        "met_percent": 90.0,
        "median_seconds": 3450.0,
        "p90_seconds": 24600,
    }
    assert (mediators["med-2"]["runs"], mediators["med-2"]["median_seconds"]) == (3, 3600.0)
    categories = {r["key"]: r for r in report["by_category"]}
    assert categories["product_quality"] == {
        "key": "product_quality",
        "runs": 6,
        "met": 5,
        "breached": 1,
        "met_percent": 83.33,
        "median_seconds": 3000.0,
        "p90_seconds": 172800,
    }
    assert (categories["counterfeit"]["median_seconds"], categories["counterfeit"]["p90_seconds"]) == (3450.0, 10800)
    later = sla_report(service.db, service.calendars(), since=T1, until=END).to_dict()
    assert {r["key"]: r["runs"] for r in later["by_clock"]}["merchant_response"] == 3  # c2's ended before T1


def test_satisfaction_by_mediator_category_and_party(data: tuple[CaseService, dict[str, str]]) -> None:
    service, ids = data
    # Comments are personal: the report carries markers, rendered through the service's one reveal.
    report = service.reveal(satisfaction_report(service.db, since=T0, until=END)).to_dict()
    assert report["by_mediator"] == [
        {"key": "(none)", "ratings": 1, "average": 1.0, "distribution": {"1": 1, "2": 0, "3": 0, "4": 0, "5": 0}},
        {"key": "med-1", "ratings": 3, "average": 4.0, "distribution": {"1": 0, "2": 0, "3": 1, "4": 1, "5": 1}},
    ]
    assert [(r["key"], r["ratings"], r["average"]) for r in report["by_category"]] == [
        ("not_received", 1, 1.0),
        ("product_quality", 3, 4.0),
    ]
    assert [(r["key"], r["average"]) for r in report["by_party"]] == [("consumer", 3.33), ("merchant", 3.0)]
    assert [(c["case_id"], c["comment"], c["score"]) for c in report["comments"]] == [
        (ids["c2"], "ok", 4),
        (ids["c3"], "处理很快", 5),
        (ids["c4"], "没人处理", 1),
    ]


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 0.9) is None
    assert percentile([5], 0.9) == 5
    assert percentile(list(range(1, 11)), 0.9) == 9
    assert percentile(list(range(1, 12)), 0.9) == 10


def test_flagging_reaches_open_cases_and_the_policies(data: tuple[CaseService, dict[str, str]], tmp_path: Path) -> None:
    service, ids = data
    strict = tmp_path / "supervision.yaml"
    strict.write_text(
        "supervision:\n  min_complaints: 1\n  period: 14d\n  flag_when_any: {response_breaches_at_least: 1}\n",
        encoding="utf-8",
    )
    intake = Triage.load(IntakePaths(supervision=strict))
    service.triage = intake
    version = service.get(actor=AUDITOR, case_id=ids["c1"]).version
    outcome = evaluate_merchants(service.db, intake.supervision, service.clock.now())
    # One event on m-1's log; its open case c1 is not written to.
    assert (outcome.raised, outcome.cleared, outcome.merchant_events) == (["m-1"], [], 1)
    c1 = service.get(actor=AUDITOR, case_id=ids["c1"])
    assert "merchant_flagged" in c1.flags and c1.version == version
    with pytest.raises(PolicyDeniedError, match="only offer the full claim"):
        service.execute(actor=MERCHANT, case_id=c1.id, name="propose_offer", data={"amount": 100})
    report = merchants_report(service.db, intake.supervision, since=T0, until=END).to_dict()["data"]
    assert report[0]["flagged"] and report[0]["flag"]["reasons"][0]["metric"] == "response_breaches_at_least"
    # A case filed against a flagged merchant is seen flagged, and its filing records the standing.
    fresh = service.file(actor=CONSUMER, new_case=new_case(order_ref="later"))
    assert "merchant_flagged" in fresh.flags
    assert service.events(actor=AUDITOR, case_id=fresh.id).data[0].data["merchant_flag"] == {"flagged": True, "seq": 1}
    again = evaluate_merchants(service.db, intake.supervision, service.clock.now())
    assert (again.raised, again.kept, again.merchant_events) == ([], ["m-1"], 0)
    lenient = tmp_path / "lenient.yaml"
    lenient.write_text(
        "supervision:\n  min_complaints: 100\n  flag_when_any: {complaints_at_least: 100}\n", encoding="utf-8"
    )
    service.triage = Triage.load(IntakePaths(supervision=lenient))
    cleared = evaluate_merchants(service.db, service.triage.supervision, service.clock.now())
    assert cleared.cleared == ["m-1"] and cleared.merchant_events == 1
    c1 = service.get(actor=AUDITOR, case_id=ids["c1"])
    assert "merchant_flagged" not in c1.flags and c1.version == version
    offered = service.execute(actor=MERCHANT, case_id=ids["c1"], name="propose_offer", data={"amount": 100})
    decided = service.events(actor=AUDITOR, case_id=ids["c1"], after_seq=offered.version - 1).data[0]
    assert decided.data["merchant_flag"] == {"flagged": False, "seq": 2}
    with service.db.read() as session:
        for case_id in (ids["c1"], fresh.id):
            assert verify_case(session, service.registry, case_id) == []
