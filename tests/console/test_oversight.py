"""Oversight pages through the real app (both backends): the dashboards' tables and CSV carry the
same figures as the ``/v1/reports/*`` answers for the period, and only overseers see them."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from typer.testing import CliRunner

from cases.service import CaseService
from cli import app
from runtime.engine import Engine
from sla.clock import ManualClock
from store.tables import REPORT_DIRTY
from tests.support.actors import ADMIN, AUDITOR, CONSUMER, MEDIATOR, MERCHANT, SENIOR, T0
from tests.support.builders import new_case
from tests.support.console import VERSION, Browserless, csrf_of, token_for
from workflow.model import Actor

H = timedelta(hours=1)
OTHER_MEDIATOR = Actor("med-2", "mediator")
SINCE, UNTIL = "2026-02-16", "2026-03-16"  # desk dates: T0 (2026-03-02) lies inside


def at(service: CaseService, moment: Any) -> None:
    clock = service.clock
    assert isinstance(clock, ManualClock)
    clock.set(moment)


def seed(engine: Engine) -> None:
    """Complaints over two weeks in three categories; some settled, closed and rated."""
    service = engine.cases
    plan = [
        (T0 - timedelta(days=7), "counterfeit", MEDIATOR),
        (T0, "counterfeit", MEDIATOR),
        (T0 + H, "counterfeit", OTHER_MEDIATOR),
        (T0 + 2 * H, "counterfeit", MEDIATOR),
        (T0 + 3 * H, "not_received", OTHER_MEDIATOR),
        (T0 - timedelta(days=6), "not_received", MEDIATOR),
        (T0 + 4 * H, "product_quality", MEDIATOR),
    ]
    for index, (when, category, mediator) in enumerate(plan):
        at(service, when)
        case = service.file(actor=CONSUMER, new_case=new_case(category=category, order_ref=f"O-{index}"))
        if case.mediator_id is None:
            service.execute(actor=mediator, case_id=case.id, name="assign")
        case = service.get(actor=AUDITOR, case_id=case.id)
        assigned = Actor(case.mediator_id or mediator.id, "mediator")
        if index % 2 == 0:
            at(service, when + H)
            service.execute(actor=MERCHANT, case_id=case.id, name="accept_claim")
            service.execute(actor=assigned, case_id=case.id, name="close")
            service.execute(actor=CONSUMER, case_id=case.id, name="rate", data={"score": 1 + index % 5})
    at(service, T0 + timedelta(days=1))


def table(html: str, name: str) -> list[dict[str, str]]:
    body = html.split(f'id="{name}-table"', 1)[1].split("</table>", 1)[0]
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", body.split("<tbody>", 1)[1], re.S):
        rows.append(dict(re.findall(r'data-column="([^"]+)" data-value="([^"]*)"', row)))
    return rows


def text(value: Any) -> str:
    return "" if value is None else str(value)


def test_dashboard_figures_equal_the_report_answers(engine: Engine, web: Callable[[], Browserless]) -> None:
    seed(engine)
    auditor = web()
    auditor.sign_in(AUDITOR)
    page = auditor.client.get("/console/dashboards", params={"since": SINCE, "until": UNTIL})
    assert page.status_code == 200, page.text
    html = page.text
    zone = "+08:00"
    params = {"since": f"{SINCE}T00:00:00{zone}", "until": f"{UNTIL}T00:00:00{zone}"}
    headers = {"Authorization": f"Bearer {token_for(engine, AUDITOR)}"}

    def api(name: str) -> dict[str, Any]:
        answer = auditor.client.get(f"/v1/reports/{name}", params=params, headers=headers)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    hotspots = api("hotspots")["categories"]
    assert hotspots, "the seeded complaints make hotspots"
    shown = table(html, "hotspots")
    expected = [
        {k: text(c[k]) for k in ("week", "category", "complaints", "previous_week", "change", "change_percent")}
        for c in hotspots
    ]
    assert shown == expected
    counterfeit = next(r for r in shown if r["category"] == "counterfeit" and r["week"] == "2026-W10")
    assert (counterfeit["complaints"], counterfeit["previous_week"], counterfeit["change"]) == ("3", "1", "2")
    # The chart draws the same values, one bar per row.
    bars = re.findall(r'<g class="bar" data-label="[^"]*" data-value="([^"]*)"', html.split('id="hotspots-chart"')[1])
    assert bars[: len(expected)] == [r["complaints"] for r in expected]

    merchants = api("merchants")["data"]
    assert {r["merchant_id"]: r for r in table(html, "merchants")} == {
        m["merchant_id"]: {
            "merchant_id": m["merchant_id"],
            "complaints": text(m["complaints"]),
            "response_breach_percent": text(m["response_breach_percent"]),
            "decided_against_percent": text(m["decided_against_percent"]),
            "honoured_percent": text(m["honoured_percent"]),
            "flagged": text(m["flagged"]),
        }
        for m in merchants
    }
    sla = api("sla")
    columns = ("key", "runs", "met", "breached", "met_percent", "median_seconds", "p90_seconds")
    assert table(html, "sla_clocks") == [{c: text(r[c]) for c in columns} for r in sla["by_clock"]]
    assert table(html, "sla_mediators") == [{c: text(r[c]) for c in columns} for r in sla["by_mediator"]]
    satisfaction = api("satisfaction")
    for group, name in (("by_mediator", "satisfaction_mediators"), ("by_category", "satisfaction_categories")):
        rows = [{c: text(r[c]) for c in ("key", "ratings", "average")} for r in satisfaction[group]]
        assert rows and table(html, name) == rows

    download = auditor.client.get("/console/dashboards/hotspots.csv", params={"since": SINCE, "until": UNTIL})
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    assert "attachment" in download.headers["content-disposition"]
    lines = list(csv.reader(io.StringIO(download.text)))
    assert lines[0] == ["week", "category", "complaints", "previous_week", "change", "change_percent"]
    assert lines[1:] == [[r[c] for c in lines[0]] for r in expected]


def test_the_default_dashboards_are_whole_days_read_from_the_read_model(
    engine: Engine, web: Callable[[], Browserless]
) -> None:
    """Without dates the page shows the 30 days up to the end of today, desk time: whole days,
    which the reports' read model answers (it folded the seeded cases: no mark is left), and
    the same figures as the reports API for those days."""
    seed(engine)
    auditor = web()
    auditor.sign_in(AUDITOR)
    page = auditor.client.get("/console/dashboards")
    assert page.status_code == 200, page.text
    with engine.db.read() as session:
        assert session.execute(select(REPORT_DIRTY)).all() == []
    today = engine.clock.now().astimezone(ZoneInfo("Asia/Shanghai")).date()
    params = {
        "since": f"{today - timedelta(days=29)}T00:00:00+08:00",
        "until": f"{today + timedelta(days=1)}T00:00:00+08:00",
    }
    headers = {"Authorization": f"Bearer {token_for(engine, AUDITOR)}"}
    hotspots = auditor.client.get("/v1/reports/hotspots", params=params, headers=headers).json()["categories"]
    assert hotspots
    assert [r["complaints"] for r in table(page.text, "hotspots")] == [str(c["complaints"]) for c in hotspots]


def test_only_overseers_see_the_dashboards(engine: Engine, web: Callable[[], Browserless]) -> None:
    mediator = web()
    mediator.sign_in(MEDIATOR)
    assert mediator.client.get("/console/dashboards").status_code == 403
    assert mediator.client.get("/console/dashboards/merchants.csv").status_code == 403
    auditor = web()
    auditor.sign_in(AUDITOR)
    assert auditor.client.get("/console/dashboards/nothing.csv").status_code == 404
    assert auditor.client.get("/console/dashboards", params={"since": "yesterday"}).status_code in (409, 422)
    anonymous = web()
    assert anonymous.client.get("/console/dashboards", follow_redirects=False).status_code == 303


def test_the_queue_filters_counts_and_answers_204_while_nothing_changed(
    engine: Engine, web: Callable[[], Browserless]
) -> None:
    seed(engine)
    service = engine.cases
    open_case = service.file(actor=CONSUMER, new_case=new_case(category="after_sales", order_ref="Q-1"))
    holder = Actor(open_case.mediator_id or MEDIATOR.id, "mediator")  # the router may have assigned it
    mediator = web()
    mediator.sign_in(holder)
    page = mediator.client.get("/console/queue")
    assert page.status_code == 200 and open_case.id in page.text
    counts = dict(re.findall(r'<li data-state="([a-z_]+)">[^<]*<strong>(\d+)</strong>', page.text))
    assert int(counts.get(open_case.state, "0")) >= 1
    only = mediator.client.get("/console/queue", params={"category": "counterfeit"})
    assert open_case.id not in only.text
    fingerprint = re.search(r'data-fingerprint="([0-9a-f]+)"', page.text)
    assert fingerprint is not None
    poll = {"seen": fingerprint.group(1)}
    unchanged = mediator.client.get("/console/queue", params=poll, headers={"HX-Request": "true"})
    assert unchanged.status_code == 204 and not unchanged.content
    service.execute(actor=MERCHANT, case_id=open_case.id, name="respond", data={"statement": "ok"})
    changed = mediator.client.get("/console/queue", params=poll, headers={"HX-Request": "true"})
    assert changed.status_code == 200 and changed.text.lstrip().startswith("<")
    assert "<html" not in changed.text  # the list alone, swapped in place
    assert f'data-fingerprint="{fingerprint.group(1)}"' not in changed.text
    etag = changed.headers["ETag"]
    assert mediator.client.get("/console/queue", headers={"If-None-Match": etag}).status_code == 304
    consumer = web()
    consumer.sign_in(CONSUMER)
    assert consumer.client.get("/console/queue").status_code == 403


def act(person: Browserless, case_id: str, name: str, **fields: str) -> Any:
    page = person.client.get(f"/console/cases/{case_id}").text
    version = VERSION.search(page)
    assert version is not None
    data = {"csrf_token": csrf_of(page), "version": version.group(1), **fields}
    return person.post(f"/console/cases/{case_id}/act/{name}", data)


def test_the_workbench_asks_rules_and_keeps_internal_notes_from_the_parties(
    engine: Engine, web: Callable[[], Browserless]
) -> None:
    service = engine.cases
    case = service.file(actor=CONSUMER, new_case=new_case(description="水壶两天就坏了", claim_amount=50000))
    holder = Actor(case.mediator_id or MEDIATOR.id, "mediator")
    mediator, consumer, senior = web(), web(), web()
    mediator.sign_in(holder)
    consumer.sign_in(CONSUMER)
    senior.sign_in(SENIOR)
    if case.mediator_id is None:
        assert act(mediator, case.id, "assign").status_code == 303
    page = mediator.client.get(f"/console/cases/{case.id}").text
    assert 'id="workbench"' in page and 'id="statements"' in page and "水壶两天就坏了" in page
    answer = act(mediator, case.id, "request_info", party="merchant", question="请提供检测报告")
    assert answer.status_code == 303, answer.text
    page = mediator.client.get(f"/console/cases/{case.id}").text
    assert "请提供检测报告" in page and 'class="paused"' in page
    assert act(mediator, case.id, "comment", body="商家态度消极", internal="on").status_code == 303
    assert "商家态度消极" in mediator.client.get(f"/console/cases/{case.id}").text
    assert "商家态度消极" not in consumer.client.get(f"/console/cases/{case.id}").text
    assert act(mediator, case.id, "escalate", reason="需要裁决").status_code == 303
    # A ruling cites the desk's rulebook (policy ruling-cites-the-rulebook): the form offers its entries.
    assert 'name="citations"' in senior.client.get(f"/console/cases/{case.id}").text
    assert act(senior, case.id, "rule", decision="for_consumer").status_code == 403
    bad = act(senior, case.id, "rule", decision="partial", awarded_amount="九十", citations="crpl-24")
    assert bad.status_code == 422
    ruled = act(
        senior, case.id, "rule", decision="partial", awarded_amount="123.45", reason="部分支持", citations="crpl-24"
    )
    assert ruled.status_code == 303, ruled.text
    settled = service.get(actor=AUDITOR, case_id=case.id)
    assert (settled.state, settled.outcome, settled.awarded_amount) == ("settled", "partial", 12345)


def test_admin_sees_the_desk_and_mediators_reloads_with_validation(
    engine: Engine, web: Callable[[], Browserless], tmp_path: Path
) -> None:
    desk = tmp_path / "desk"
    assert CliRunner().invoke(app, ["config", "init", str(desk)]).exit_code == 0
    engine.settings = engine.settings.model_copy(update={"config_dir": desk})
    admin = web()
    admin.sign_in(ADMIN)
    page = admin.client.get("/console/admin")
    assert page.status_code == 200 and 'id="mediator-med-1"' in page.text and "reviewer-1" in page.text
    review = desk / "intake" / "review.yaml"
    review.write_text(review.read_text(encoding="utf-8").replace("share: 0.1", "share: 7"), encoding="utf-8")
    refused = admin.post("/console/admin/reload", {"csrf_token": csrf_of(page.text)})
    assert refused.status_code == 422 and f"{review}:" in refused.text and "share" in refused.text
    review.write_text(review.read_text(encoding="utf-8").replace("share: 7", "share: 0.5"), encoding="utf-8")
    reloaded = admin.post("/console/admin/reload", {"csrf_token": csrf_of(page.text)})
    assert reloaded.status_code == 303
    assert engine.triage.review.sampling.share == 0.5
    changed = admin.post("/console/admin/mediators/med-1", {"csrf_token": csrf_of(page.text), "capacity": "7"})
    assert changed.status_code == 303
    assert 'value="7"' in admin.client.get("/console/admin").text.split('id="mediator-med-1"')[1].split("</tr>")[0]
    auditor = web()
    auditor.sign_in(AUDITOR)
    assert auditor.client.get("/console/admin").status_code == 200
    assert auditor.post("/console/admin/reload", {"csrf_token": csrf_of(page.text)}).status_code == 403
    mediator = web()
    mediator.sign_in(MEDIATOR)
    assert mediator.client.get("/console/admin").status_code == 403
