"""The console over the real app and database, without a browser: sign-in, CSRF, languages,
the consumer's filing, the case page's policy-driven buttons, stale versions, the merchant's
inbox, escaping and the non-party 404. The browser journeys are in test_browser_journeys.py."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from console.i18n import CATALOG_FILES, LANGUAGES, choose_language
from reports.supervision import evaluate_merchants
from runtime.engine import Engine
from sla.clock import ManualClock
from tests.support.actors import OTHER_CONSUMER, OTHER_MERCHANT
from tests.support.builders import new_case
from tests.support.console import VERSION, Browserless, csrf_of, token_for
from workflow.model import Actor

CONSOLE = Path(__file__).resolve().parents[2] / "console"
HTMX_SHA256 = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"  # htmx.org 2.0.11 dist/htmx.min.js
SHOPPER = Actor("c-1", "consumer")
SHOP = Actor("mu-1", "merchant", merchant_id="m-1")
Web = Callable[[], Browserless]


def file_complaint(web: Browserless, subject: str = "耳机是假货", **fields: str) -> str:
    page = web.client.get("/console/cases/new")
    data = {
        "csrf_token": csrf_of(page.text),
        "merchant_id": "m-1",
        "order_ref": "TB-1",
        "subject": subject,
        "description": "序列号查不到，是假货。",
        "amount": "899.00",
        "currency": "CNY",
        "desired_outcome": "refund",
        **fields,
    }
    answer = web.post("/console/cases", data, files=[("files", ("receipt.txt", b"order TB-1", "text/plain"))])
    assert answer.status_code == 303, answer.text
    found = re.match(r"/console/cases/([^?]+)\?notice=filed$", answer.headers["location"])
    assert found, answer.headers["location"]
    return found.group(1)


# --- foundation -------------------------------------------------------------------------------------


def test_every_message_exists_in_both_languages() -> None:
    used = {
        message
        for _, _, message, _, _ in extract_from_dir(
            str(CONSOLE),
            method_map=[("templates/**.html", "jinja2"), ("**.py", "python")],
            options_map={"templates/**.html": {"extensions": "jinja2.ext.i18n"}},
            keywords={"_": None, "N_": None},
        )
    }
    assert len(used) > 150
    for language in LANGUAGES:
        with (CONSOLE / "messages" / CATALOG_FILES[language]).open("rb") as source:
            catalog = {m.id: m.string for m in read_po(source) if m.id}
        missing = sorted(m for m in used if not catalog.get(m))
        assert not missing, f"{language} lacks {missing}"
        assert not set(catalog) - used, f"{language} has messages no page uses: {sorted(set(catalog) - used)}"


def test_vendored_htmx_is_the_pinned_release() -> None:
    assert hashlib.sha256((CONSOLE / "static" / "htmx.min.js").read_bytes()).hexdigest() == HTMX_SHA256


def test_language_from_accept_language_and_the_switch() -> None:
    assert choose_language(None, "en-GB,en;q=0.9,zh;q=0.5") == "en"
    assert choose_language(None, "fr, zh-TW;q=0.8, en;q=0.7") == "zh-CN"
    assert choose_language(None, "de") == "zh-CN"
    assert choose_language("en", "zh-CN") == "en"


def test_pages_carry_the_console_headers_and_assets_are_served(web: Web) -> None:
    visitor = web()
    page = visitor.client.get("/console/sign-in", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert '<label for="token">Token</label>' in page.text
    assert "Demo users" not in page.text  # not in demo mode
    assert visitor.client.get("/console/static/htmx.min.js").status_code == 200
    assert visitor.client.get("/", follow_redirects=False).headers["location"] == "/console/"


def test_demo_mode_lists_demo_users_one_click_each(console_engine_factory: Callable[..., Engine]) -> None:
    from tests.support.console import console_client

    visitor = console_client(console_engine_factory(demo=True))
    try:
        page = visitor.client.get("/console/sign-in", headers={"Accept-Language": "zh-CN"})
        assert "令牌" in page.text and "演示用户" in page.text
        answer = visitor.post("/console/session", {"csrf_token": csrf_of(page.text), "demo_user": "mu-m-1001"})
        assert answer.status_code == 303
        assert visitor.client.get("/console/", follow_redirects=False).headers["location"] == "/console/inbox"
    finally:
        # The app's lifespan ends before the factory disposes the engine. Left open, its portal
        # thread kept the app alive after the test; with a dispatcher on, that thread polled the
        # disposed engine, opening psycopg connections no one closed.
        visitor.client.__exit__(None, None, None)


def test_sign_in_sets_a_safe_cookie_and_sign_out_clears_it(web: Web, engine: Engine) -> None:
    visitor = web()
    page = visitor.client.get("/console/sign-in")
    answer = visitor.post("/console/session", {"csrf_token": csrf_of(page.text), "token": token_for(engine, SHOPPER)})
    cookie = answer.headers["set-cookie"]
    assert "console_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain HTTP here; Secure when the request came over HTTPS
    assert visitor.client.get("/console/cases").status_code == 200
    # Signed in, the forms are bound to the session: the sign-in page's old token is spent.
    assert visitor.post("/console/session", {"csrf_token": csrf_of(page.text), "token": "x"}).status_code == 403
    refused = visitor.post("/console/session", {"csrf_token": visitor.csrf("/console/sign-in"), "token": "not-a-token"})
    assert refused.status_code == 401
    out = visitor.post("/console/session/end", {"csrf_token": visitor.csrf()})
    assert out.status_code == 303
    assert (
        visitor.client.get("/console/cases", follow_redirects=False).headers["location"].startswith("/console/sign-in")
    )


def test_a_bearer_header_signs_in_without_the_form(web: Web, engine: Engine) -> None:
    page = web().client.get("/console/cases", headers={"Authorization": f"Bearer {token_for(engine, SHOPPER)}"})
    assert page.status_code == 200 and "c-1" in page.text
    expired = web().client.get("/console/cases", headers={"Authorization": "Bearer x.y.z"}, follow_redirects=False)
    assert expired.status_code == 303


def test_a_form_without_the_sessions_csrf_token_is_refused_and_changes_nothing(web: Web) -> None:
    shopper = web()
    shopper.sign_in(SHOPPER)
    case_id = file_complaint(shopper)
    before = shopper.client.get(f"/console/cases/{case_id}").text
    version = VERSION.search(before)
    assert version
    for token in ("", "0" * 64):
        answer = shopper.post(
            f"/console/cases/{case_id}/act/comment", {"csrf_token": token, "version": version.group(1), "body": "hi"}
        )
        assert answer.status_code == 403
    # Another person's token does not fit this session either.
    other = web()
    other.sign_in(OTHER_CONSUMER)
    answer = shopper.post(
        f"/console/cases/{case_id}/act/comment",
        {"csrf_token": other.csrf(), "version": version.group(1), "body": "hi"},
    )
    assert answer.status_code == 403
    assert VERSION.search(shopper.client.get(f"/console/cases/{case_id}").text).group(1) == version.group(1)  # type: ignore[union-attr]


# --- the consumer's portal ---------------------------------------------------------------------------


def test_the_classifier_suggests_a_category_with_the_words_that_decided_it(web: Web) -> None:
    shopper = web()
    shopper.sign_in(SHOPPER)
    answer = shopper.client.get(
        "/console/classify",
        params={"subject": "Fake sneakers", "description": "counterfeit logo"},
        headers={"HX-Request": "true", "Accept-Language": "en"},
    )
    assert answer.status_code == 200
    assert answer.text.lstrip().startswith('<div id="suggestion"')  # the fragment only
    assert "Suggested category: Counterfeit" in answer.text and "Because of:" in answer.text


def test_filing_with_evidence_shows_the_case_with_its_clock(web: Web) -> None:
    shopper = web()
    shopper.sign_in(SHOPPER)
    case_id = file_complaint(shopper, category="")
    page = shopper.client.get(f"/console/cases/{case_id}", headers={"Accept-Language": "en"}).text
    assert "receipt.txt" in page and "draft, only you see it" in page
    assert "left in business time" in page  # the merchant's response clock (routed on filing)
    assert "¥899.00" in page
    assert "Counterfeit" in page  # the classifier chose the category
    listed = shopper.client.get("/console/cases", headers={"Accept-Language": "en"}).text
    assert case_id in listed and "What happens next" in listed


def test_filing_with_bad_fields_keeps_what_was_typed(web: Web) -> None:
    shopper = web()
    shopper.sign_in(SHOPPER)
    page = shopper.client.get("/console/cases/new")
    answer = shopper.post(
        "/console/cases",
        {"csrf_token": csrf_of(page.text), "merchant_id": "m-1", "subject": "我的标题", "amount": "12.345"},
    )
    assert answer.status_code == 422
    assert 'value="我的标题"' in answer.text and 'value="12.345"' in answer.text


def test_a_refused_file_does_not_stop_the_filing_and_is_said(web: Web) -> None:
    shopper = web()
    shopper.sign_in(SHOPPER)
    page = shopper.client.get("/console/cases/new")
    answer = shopper.post(
        "/console/cases",
        {
            "csrf_token": csrf_of(page.text),
            "merchant_id": "m-1",
            "order_ref": "TB-2",
            "subject": "没收到货",
            "description": "物流停了十天。",
            "amount": "88",
            "currency": "CNY",
        },
        files=[("files", ("page.html", b"<p>hi</p>", "text/html")), ("files", ("photo.png", b"\x89PNG", "image/png"))],
    )
    assert answer.status_code == 303 and answer.headers["location"].endswith("?notice=filed_files_refused")
    case_page = shopper.client.get(answer.headers["location"], headers={"Accept-Language": "en"}).text
    assert "not every file was accepted" in case_page
    assert "photo.png" in case_page and "page.html" not in case_page


def test_a_stale_submit_gets_the_fresh_page_and_keeps_the_typed_text(web: Web) -> None:
    shopper = web()
    shopper.sign_in(SHOPPER)
    case_id = file_complaint(shopper)
    page = shopper.client.get(f"/console/cases/{case_id}").text
    version, csrf = VERSION.search(page).group(1), csrf_of(page)  # type: ignore[union-attr]
    first = shopper.post(
        f"/console/cases/{case_id}/act/comment", {"csrf_token": csrf, "version": version, "body": "一"}
    )
    assert first.status_code == 303
    second = shopper.post(
        f"/console/cases/{case_id}/act/comment",
        {"csrf_token": csrf, "version": version, "body": "第二条"},
        headers={"HX-Request": "true", "Accept-Language": "en"},
    )
    assert second.status_code == 412
    assert "This case changed while you were looking at it" in second.text
    assert 'hx-swap-oob="true"' in second.text  # the notice goes to the aria-live region
    assert ">第二条</textarea>" in second.text  # nothing typed is lost
    assert "一" in second.text  # the fresh page shows the first message


def test_htmx_posts_get_the_fragment_and_plain_posts_a_303(web: Web) -> None:
    shopper = web()
    shopper.sign_in(SHOPPER)
    case_id = file_complaint(shopper)
    page = shopper.client.get(f"/console/cases/{case_id}").text
    data = {"csrf_token": csrf_of(page), "version": VERSION.search(page).group(1), "body": "hello"}  # type: ignore[union-attr]
    answer = shopper.post(f"/console/cases/{case_id}/act/comment", data, headers={"HX-Request": "true"})
    assert answer.status_code == 200 and "<html" not in answer.text and '<div id="case">' in answer.text


def test_nobody_sees_a_case_the_policies_hide(web: Web) -> None:
    shopper = web()
    shopper.sign_in(SHOPPER)
    case_id = file_complaint(shopper)
    for outsider in (OTHER_CONSUMER, OTHER_MERCHANT):
        stranger = web()
        stranger.sign_in(outsider)
        assert stranger.client.get(f"/console/cases/{case_id}").status_code == 404
        assert stranger.client.get(f"/console/cases/{case_id}/evidence/ev1").status_code == 404
    assert shopper.client.get("/console/cases/DSP-NOPE").status_code == 404


def test_case_texts_are_escaped(web: Web) -> None:
    shopper = web()
    shopper.sign_in(SHOPPER)
    case_id = file_complaint(shopper, subject='<script>alert(1)</script><img src=x onerror="alert(2)">')
    page = shopper.client.get(f"/console/cases/{case_id}").text
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_evidence_is_a_download_never_inline(web: Web) -> None:
    shopper = web()
    shopper.sign_in(SHOPPER)
    case_id = file_complaint(shopper)
    link = re.search(rf"/console/cases/{case_id}/evidence/(\w+)", shopper.client.get(f"/console/cases/{case_id}").text)
    assert link
    answer = shopper.client.get(link.group(0))
    assert answer.status_code == 200 and answer.content == b"order TB-1"
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["content-disposition"].startswith("attachment;")


# --- the merchant's inbox ----------------------------------------------------------------------------


def test_the_merchant_responds_offers_and_the_consumer_accepts(web: Web) -> None:
    shopper, shop = web(), web()
    shopper.sign_in(SHOPPER)
    shop.sign_in(SHOP)
    case_id = file_complaint(shopper)
    inbox = shop.client.get("/console/inbox", headers={"Accept-Language": "en"}).text
    assert case_id in inbox and "Your summary" in inbox
    page = shop.client.get(f"/console/cases/{case_id}").text
    assert "/act/respond" in page and "/act/accept_claim" in page
    answer = shop.post(
        f"/console/cases/{case_id}/act/respond",
        {"csrf_token": csrf_of(page), "version": VERSION.search(page).group(1), "statement": "查过了"},  # type: ignore[union-attr]
    )
    assert answer.status_code == 303
    page = shop.client.get(f"/console/cases/{case_id}").text
    answer = shop.post(
        f"/console/cases/{case_id}/act/propose_offer",
        {"csrf_token": csrf_of(page), "version": VERSION.search(page).group(1), "amount": "500", "currency": "CNY"},  # type: ignore[union-attr]
    )
    assert answer.status_code == 303, answer.text
    page = shopper.client.get(f"/console/cases/{case_id}", headers={"Accept-Language": "en"}).text
    assert "¥500.00" in page
    offer = re.search(r'name="offer_id" value="(\w+)"', page)
    assert offer
    answer = shopper.post(
        f"/console/cases/{case_id}/act/accept_offer",
        {"csrf_token": csrf_of(page), "version": VERSION.search(page).group(1), "offer_id": offer.group(1)},  # type: ignore[union-attr]
    )
    assert answer.status_code == 303, answer.text
    assert ">accepted<" in shopper.client.get(f"/console/cases/{case_id}", headers={"Accept-Language": "en"}).text


def test_an_action_the_policies_refuse_is_disabled_with_their_reason(web: Web, engine: Engine) -> None:
    shopper = web()
    shopper.sign_in(SHOPPER)
    case_id = file_complaint(shopper)
    page = shopper.client.get(f"/console/cases/{case_id}").text
    answer = shopper.post(
        f"/console/cases/{case_id}/act/withdraw",
        {"csrf_token": csrf_of(page), "version": VERSION.search(page).group(1)},  # type: ignore[union-attr]
    )
    assert answer.status_code == 303
    page = shopper.client.get(f"/console/cases/{case_id}", headers={"Accept-Language": "en"}).text
    assert "/act/reopen" in page  # within the reopen window: allowed
    clock = engine.clock
    assert isinstance(clock, ManualClock)
    clock.advance(timedelta(days=16))
    page = shopper.client.get(f"/console/cases/{case_id}", headers={"Accept-Language": "en"}).text
    assert "/act/reopen" not in page
    disabled = re.search(
        r"<button type=\"button\" disabled[^>]*>Reopen the case</button>\s*<p class=\"reason\"[^>]*>([^<]+)", page
    )
    assert disabled, "reopen is shown disabled"
    assert "can be reopened only within 15 days of closing" in disabled.group(1)
    # The workflow rules out what the state does not allow: no offer buttons on a closed case.
    assert "Propose offer" not in page


def test_the_merchant_adds_and_submits_evidence_answers_a_question_and_accepts_the_claim(
    web: Web, engine: Engine
) -> None:
    shopper, shop = web(), web()
    shopper.sign_in(SHOPPER)
    shop.sign_in(SHOP)
    case_id = file_complaint(shopper)
    mediator_id = engine.cases.get(actor=SHOPPER, case_id=case_id).mediator_id
    assert mediator_id
    mediator = Actor(mediator_id, "mediator")
    engine.cases.execute(
        actor=mediator, case_id=case_id, name="request_info", data={"party": "consumer", "question": "照片？"}
    )
    engine.cases.execute(
        actor=mediator, case_id=case_id, name="request_info", data={"party": "merchant", "question": "发货记录？"}
    )
    page = shop.client.get(f"/console/cases/{case_id}", headers={"Accept-Language": "en"}).text
    assert "发货记录？" in page and "Questions for you" in page and "照片？" not in page
    # The merchant's response clock waits while the consumer owes an answer, and says why.
    assert "waiting for the consumer&#39;s answer to a question" in page
    answer = shop.post(
        f"/console/cases/{case_id}/evidence",
        {"csrf_token": csrf_of(page), "version": VERSION.search(page).group(1), "description": "运单"},  # type: ignore[union-attr]
        files={"file": ("waybill.pdf", b"%PDF-1.4 waybill", "application/pdf")},
    )
    assert answer.status_code == 303, answer.text
    refused = shop.post(
        f"/console/cases/{case_id}/evidence",
        {"csrf_token": csrf_of(page), "description": ""},
        files={"file": ("page.html", b"<script>x</script>", "text/html")},
    )
    assert refused.status_code == 422 and "text/html is not accepted" in refused.text
    page = shop.client.get(f"/console/cases/{case_id}").text
    assert "waybill.pdf" in page
    assert "waybill.pdf" not in shopper.client.get(f"/console/cases/{case_id}").text  # a draft: only its owner
    answer = shop.post(
        f"/console/cases/{case_id}/act/submit_evidence",
        {"csrf_token": csrf_of(page), "version": VERSION.search(page).group(1)},  # type: ignore[union-attr]
    )
    assert answer.status_code == 303
    assert "waybill.pdf" in shopper.client.get(f"/console/cases/{case_id}").text  # submitted: both see it
    page = shop.client.get(f"/console/cases/{case_id}").text
    request_id = re.search(r'name="request_id" value="(\w+)"', page)
    assert request_id
    answer = shop.post(
        f"/console/cases/{case_id}/act/provide_info",
        {
            "csrf_token": csrf_of(page),
            "version": VERSION.search(page).group(1),  # type: ignore[union-attr]
            "request_id": request_id.group(1),
            "answer": "已发货，见运单。",
        },
    )
    assert answer.status_code == 303
    page = shop.client.get(f"/console/cases/{case_id}").text
    answer = shop.post(
        f"/console/cases/{case_id}/act/accept_claim",
        {"csrf_token": csrf_of(page), "version": VERSION.search(page).group(1)},  # type: ignore[union-attr]
    )
    assert answer.status_code == 303
    case = engine.cases.get(actor=SHOPPER, case_id=case_id)
    assert case.state == "settled" and case.outcome == "for_consumer" and case.awarded_amount == case.claim_amount


def test_the_inbox_orders_by_deadline_filters_and_shows_the_supervision_flag(web: Web, engine: Engine) -> None:
    shopper, shop = web(), web()
    shopper.sign_in(SHOPPER)
    shop.sign_in(SHOP)
    clock = engine.clock
    assert isinstance(clock, ManualClock)
    first = file_complaint(shopper, subject="第一单", category="not_received")
    clock.advance(timedelta(hours=3))
    second = file_complaint(shopper, subject="第二单", category="counterfeit")
    foreign = web()
    foreign.sign_in(Actor("c-7", "consumer"))
    elsewhere = file_complaint(foreign, merchant_id="m-2")
    inbox = shop.client.get("/console/inbox", headers={"Accept-Language": "en"}).text
    assert inbox.index(first) < inbox.index(second)  # the nearer deadline first
    assert elsewhere not in inbox  # another merchant's claim
    only = shop.client.get("/console/inbox", params={"category": "counterfeit"}).text
    assert second in only and first not in only
    assert "No supervision flag is raised." in inbox
    assert "Open claims: 2<" in inbox
    # Five complaints in the period, three of them counterfeit: the packaged thresholds flag m-1.
    for index in range(3):
        engine.cases.file(
            actor=SHOPPER, new_case=new_case(merchant_id="m-1", category="counterfeit", order_ref=f"F{index}")
        )
    raised = evaluate_merchants(engine.db, engine.triage.supervision, clock.advance(timedelta(minutes=1)))
    assert "m-1" in raised.to_dict()["raised"], raised.to_dict()
    flagged = shop.client.get("/console/inbox", headers={"Accept-Language": "en"}).text
    assert "under supervision since" in flagged
    assert re.search(r"counterfeit[^<]* is 4(\.0)?, the threshold is 3", flagged), flagged[
        flagged.find("supervision") :
    ][:600]
    assert shopper.client.get("/console/inbox").status_code == 403  # consumers have no inbox


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_the_language_switch_sticks(web: Web, language: str) -> None:
    visitor = web()
    page = visitor.client.get("/console/sign-in", headers={"Accept-Language": "de"})
    answer = visitor.post(
        "/console/language", {"csrf_token": csrf_of(page.text), "language": language, "back": "/console/sign-in"}
    )
    assert answer.status_code == 303 and answer.headers["location"].startswith("/console/sign-in")
    again = visitor.client.get("/console/sign-in", headers={"Accept-Language": "de"}).text
    assert f'<html lang="{language}">' in again
    away = visitor.post(
        "/console/language", {"csrf_token": csrf_of(again), "language": language, "back": "https://evil.example/"}
    )
    assert away.headers["location"].startswith("/console/")


@pytest.mark.parametrize("language", LANGUAGES)
def test_instants_read_as_babel_formats_them(language: str) -> None:
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from babel.dates import format_datetime

    from console.formatting import Formatter
    from console.i18n import BABEL_LOCALES

    zone = ZoneInfo("Asia/Shanghai")
    formatter = Formatter(language, zone, ZoneInfo("UTC"))
    moment = datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC)
    for step in range(0, 48 * 3600, 1777):
        at = moment + timedelta(seconds=step)
        assert formatter.instant(at) == format_datetime(at, "medium", tzinfo=zone, locale=BABEL_LOCALES[language])
