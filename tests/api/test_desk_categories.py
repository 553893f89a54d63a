"""A desk's own categories end to end: the chargeback example files under card-network reason
codes over HTTP (a declared code accepted, an undeclared one or none refused), mediators' skills
name the desk's codes, the merchants report counts per code in the desk's order, and the console
lists the desk's titles in the viewer's language; a code a later desk version drops still renders."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from desk.loader import load_desk
from outbox.dispatch import DispatchConfig, Dispatcher
from reports.merchants import merchants_report
from runtime.bootstrap import apply_desk, build_engine
from runtime.settings import Settings
from sla.clock import ManualClock
from tests.support.actors import T0
from tests.support.api import Api, Party
from tests.support.console import console_client
from workflow.model import Actor

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
COMPLAINT: dict[str, Any] = {
    "merchant_id": "m-77",
    "order_ref": "CARD-2026-03-0042",
    "subject": "Concert tickets never delivered",
    "description": "Paid by card on 20 February; no tickets arrived.",
    "claim": {"amount": 60000, "currency": "EUR"},
}


@pytest.fixture
def chargeback(tmp_path: Path) -> Path:
    root = tmp_path / "chargeback"
    shutil.copytree(EXAMPLES / "chargeback", root)
    return root


@pytest.fixture
def api(db_url: str, chargeback: Path) -> Iterator[Api]:
    settings = Settings(environment="test", database_url=db_url, run_ticker=False, config_dir=chargeback)
    clock = ManualClock(T0)
    engine = build_engine(settings, clock=clock)
    client = TestClient(create_app(engine=engine), raise_server_exceptions=False)
    client.__enter__()
    yield Api(client=client, service=engine.cases, clock=clock, settings=settings, engine=engine)
    client.__exit__(None, None, None)
    engine.cases.db.dispose()


def file(api: Api, who: Party, category: str | None, expect: int = 201, **extra: Any) -> dict[str, Any]:
    body = {**COMPLAINT, **extra, **({"category": category} if category is not None else {})}
    answer = api.client.post("/v1/cases", json=body, headers=who.headers)
    assert answer.status_code == expect, answer.text
    found: dict[str, Any] = answer.json()
    return found


def test_filing_over_http_takes_the_desks_codes_only(api: Api) -> None:
    cardholder = Party(api, "card-holder-1", "consumer")
    case = file(api, cardholder, "mc-4853")
    assert (case["category"], case["state"]) == ("mc-4853", "awaiting_evidence")
    assert cardholder.get(f"/v1/cases/{case['id']}")["category"] == "mc-4853"

    # The acknowledgement names the code by its title, in the recipient's language.
    dispatcher = Dispatcher(api.service, api.engine.notification_rules, DispatchConfig(timeout_seconds=1))
    try:
        dispatcher.run_once()
    finally:
        dispatcher.close()
    (notice,) = cardholder.get("/v1/notifications")["data"]
    assert notice["kind"] == "acknowledgement"
    assert "filed under: Mastercard 4853 Cardholder dispute." in notice["body"], notice["body"]
    language = api.client.put("/v1/notifications/contact", json={"language": "zh-CN"}, headers=cardholder.headers)
    assert language.status_code == 200, language.text
    (notice,) = cardholder.get("/v1/notifications")["data"]
    assert "类别：万事达 4853 持卡人争议" in notice["body"], notice["body"]

    refused = file(api, cardholder, "not_received", expect=422)  # one of the engine's defaults
    assert "unknown category 'not_received'" in refused["detail"]
    assert "visa-13.1, visa-13.3" in refused["detail"]
    file(api, cardholder, "Visa 13.1", expect=422)  # not a category id at all: the schema refuses
    # The desk has no classification of its own: nothing is suggested, the filer must choose.
    missing = file(api, cardholder, None, expect=422)
    assert "category is required" in missing["detail"]


def test_mediators_skills_name_the_desks_codes(api: Api) -> None:
    admin = Party(api, "desk-admin", "admin")
    mediator = {"display_name": "Fraud analyst", "languages": ["*"], "capacity": 5, "calendar": "issuer"}
    created = api.client.post(
        "/v1/mediators",
        json={"id": "fraud-1", "categories": ["visa-10.4", "mc-4837"], **mediator},
        headers=admin.headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["categories"] == ["visa-10.4", "mc-4837"]
    refused = api.client.post(
        "/v1/mediators", json={"id": "fraud-2", "categories": ["counterfeit"], **mediator}, headers=admin.headers
    )
    assert refused.status_code == 422 and "counterfeit" in refused.text


def test_the_merchants_report_counts_per_code_in_the_desks_order(api: Api) -> None:
    cardholder = Party(api, "card-holder-2", "consumer")
    for category in ("mc-4853", "visa-13.6", "mc-4853", "visa-13.1"):
        file(api, cardholder, category)
    api.clock.advance(timedelta(hours=1))
    engine = api.engine
    report = merchants_report(
        engine.db,
        engine.triage.supervision,
        since=T0 - timedelta(days=1),
        until=api.clock.now(),
        merchant_id="m-77",
        categories=engine.cases.categories,
    )
    (row,) = report.to_dict()["data"]
    # The desk's order (visa-13.1, visa-13.3, visa-13.6, visa-10.4, mc-4853, ...): neither by count
    # nor alphabetical.
    assert [(c["category"], c["complaints"]) for c in row["by_category"]] == [
        ("visa-13.1", 1),
        ("visa-13.6", 1),
        ("mc-4853", 2),
    ]


def test_the_console_lists_the_desks_titles_in_the_viewers_language(api: Api, chargeback: Path) -> None:
    engine = api.engine
    web = console_client(engine)
    try:
        web.sign_in(Actor("card-holder-3", "consumer"))
        english = web.client.get("/console/cases/new", headers={"Accept-Language": "en"}).text
        assert '<option value="mc-4853">Mastercard 4853 Cardholder dispute</option>' in english
        assert '<option value="visa-10.4">Visa 10.4 Card-absent fraud</option>' in english
        assert "Counterfeit" not in english and 'value="not_received"' not in english
        # Nothing is suggested: the category is required, with no "use the suggestion" choice.
        assert '<select id="category" name="category" required>' in english
        assert "Use the suggestion" not in english and 'id="suggestion"' not in english
        chinese = web.client.get("/console/cases/new", headers={"Accept-Language": "zh-CN"}).text
        assert '<option value="mc-4853">万事达 4853 持卡人争议</option>' in chinese

        case_id = file(api, Party(api, "card-holder-3", "consumer"), "mc-4837")["id"]
        page = web.client.get(f"/console/cases/{case_id}", headers={"Accept-Language": "en"}).text
        assert "Mastercard 4837 No cardholder authorisation" in page

        # A later desk version drops the code: the case keeps it, and its page shows the id.
        manifest = chargeback / "desk.yaml"
        text = manifest.read_text(encoding="utf-8")
        start = text.index("  - id: mc-4837")
        manifest.write_text(text[:start], encoding="utf-8")
        apply_desk(engine, load_desk(chargeback))
        assert "mc-4837" not in engine.cases.categories
        page = web.client.get(f"/console/cases/{case_id}", headers={"Accept-Language": "en"}).text
        assert "category: mc-4837" in page and "Mastercard 4837" not in page
        assert (
            api.client.get(f"/v1/cases/{case_id}", headers=Party(api, "card-holder-3", "consumer").headers).json()[
                "category"
            ]
            == "mc-4837"
        )
    finally:
        web.client.__exit__(None, None, None)
