"""The console in a real browser (Playwright driving Debian's Chromium) against a live server:
the four journeys of issue #19 in Chinese and in English, the two-tab conflict, an XSS attempt,
a non-party's 404, a cross-site form post refused, and axe on every page visited (no serious or
critical violation). Screenshots go to build/screenshots/<test name>/."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx2
import pytest

from cases.sweep import fire_due_timers
from runtime.engine import Engine
from sla.clock import ManualClock
from tests.support.axe import assert_accessible
from tests.support.console import token_for
from tests.support.live import free_port
from workflow.model import Actor

CONSUMER = Actor("c-2001", "consumer")  # the demo consumer (runtime/demo.py)
SHOP = Actor("mu-m-1001", "merchant", merchant_id="m-1001")
Shots = Callable[[Any, str], None]

# What each language's pages say at the points the journeys check.
WORDS = {
    "en": {
        "suggested": "Suggested category: Counterfeit",
        "left": "left in business time",
        "settled": "Settled",
        "accepted": "accepted",
        "rated": "You rated this case 4 of 5.",
        "stale": "This case changed while you were looking at it",
        "not_found": "Not found",
        "token": "Token",
        "sign_in": "Sign in",
    },
    "zh-CN": {
        "suggested": "建议类别：假冒商品",
        "left": "剩余工作时间",
        "settled": "已达成解决",
        "accepted": "已接受",
        "rated": "您给本案的评分是 4 分（满分 5 分）。",
        "stale": "您查看期间，此案件已有更新",
        "not_found": "未找到",
        "token": "令牌",
        "sign_in": "登录",
    },
}
LANGUAGES = list(WORDS)


def person(browser: Any, base: str, language: str) -> Any:
    """A browser context (its own cookies) whose Accept-Language is ``language``."""
    context = browser.new_context(locale=language, base_url=base, timezone_id="Europe/Berlin")
    context.set_default_timeout(10_000)
    return context


def demo_sign_in(page: Any, who: str) -> None:
    page.goto("/console/sign-in")
    page.locator(f'form:has(input[name="demo_user"][value="{who}"]) button').click()
    page.wait_for_url("**/console/**")


def status_text(page: Any) -> str:
    return str(page.locator("#status").inner_text())


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_four_journeys(browser: Any, live: tuple[str, Engine], language: str, shots: Shots, tmp_path: Any) -> None:
    base, engine = live
    words = WORDS[language]
    errors: list[str] = []

    # (1) The consumer signs in, files a complaint with a suggested category and an evidence
    # file, and sees the case with its clock.
    shopper = person(browser, base, language).new_page()
    shopper.on("pageerror", lambda error: errors.append(str(error)))
    shopper.goto("/console/sign-in")
    assert shopper.get_by_label(words["token"]).is_visible()
    assert_accessible(shopper, "sign-in")
    shots(shopper, "1-sign-in")
    demo_sign_in(shopper, CONSUMER.id)
    assert_accessible(shopper, "my cases")
    shopper.goto("/console/cases/new")
    shopper.fill("#merchant_id", "m-1001")
    shopper.fill("#order_ref", "TB-20261206-1")
    shopper.locator("#subject").press_sequentially("收到的耳机是假货", delay=20)
    shopper.fill("#description", "序列号在官网查不到。")
    shopper.wait_for_selector(f"#suggestion:has-text('{words['suggested']}')")
    assert_accessible(shopper, "filing form with a suggestion")
    shots(shopper, "1-filing-with-suggestion")
    shopper.fill("#amount", "899")
    evidence = tmp_path / "receipt.txt"
    evidence.write_text("order TB-20261206-1, paid 899.00", encoding="utf-8")
    shopper.set_input_files("#files", str(evidence))
    shopper.locator('form[action="/console/cases"] button[type=submit]').click()
    shopper.wait_for_url("**/console/cases/DSP-*")
    case_url = shopper.url.split("?")[0]
    case_id = case_url.rsplit("/", 1)[1]
    assert words["left"] in shopper.locator(".clock").first.inner_text()
    assert "receipt.txt" in shopper.content()
    assert_accessible(shopper, "the consumer's case page")
    shots(shopper, "1-case-with-clock")

    # (2) The merchant signs in, sees the claim at the top of the inbox with its deadline,
    # responds and makes an offer.
    shop = person(browser, base, language).new_page()
    shop.on("pageerror", lambda error: errors.append(str(error)))
    demo_sign_in(shop, SHOP.id)
    shop.select_option("#filter-state", "assigned")
    shop.locator("form.filters button").click()
    first_row = shop.locator("#claims tbody tr").first
    assert case_id in first_row.inner_text() and words["left"] in first_row.inner_text()
    assert_accessible(shop, "the merchant's inbox")
    shots(shop, "2-inbox")
    first_row.locator("a").click()
    shop.fill("#statement", "已核实，同意部分退款。")
    shop.locator('form[action$="/act/respond"] button').click()
    shop.wait_for_selector('form[action$="/act/respond"]', state="detached")
    # The mediator starts mediating (their workbench is issue #20's: here through the engine's
    # service): offers belong to the state they are made in, and mediation is where they count.
    mediator_id = engine.cases.get(actor=CONSUMER, case_id=case_id).mediator_id
    assert mediator_id is not None
    mediator = Actor(mediator_id, "mediator")
    engine.cases.execute(actor=mediator, case_id=case_id, name="start_mediation")
    shop.reload()
    shop.fill("#offer-amount", "450")
    shop.fill("#offer-terms", "退一半货款")
    shop.locator('form[action$="/act/propose_offer"] button').click()
    shop.wait_for_selector("li.offer")
    assert_accessible(shop, "the merchant's case page")
    shots(shop, "2-responded-and-offered")

    # (3) The consumer accepts the offer; the mediator settles; the case shows settled.
    shopper.goto(case_url)
    shopper.locator('form[action$="/act/accept_offer"] button').click()
    shopper.wait_for_selector('form[action$="/act/accept_offer"]', state="detached")
    assert shopper.locator("li.offer strong").inner_text() == words["accepted"]
    engine.cases.execute(actor=mediator, case_id=case_id, name="settle")
    shopper.goto(case_url)
    assert words["settled"] in shopper.locator("#now-heading + p").inner_text()
    shots(shopper, "3-settled")

    # (4) The fulfilment clock runs out (the engine's clock moved, the sweep run): the case
    # closes, and the consumer rates it, once.
    clock = engine.clock
    assert isinstance(clock, ManualClock)
    fire_due_timers(engine.cases, clock.advance(timedelta(days=8)))
    shopper.goto(case_url)
    shopper.locator("label[for=score-4]").click()
    shopper.fill("#rating-comment", "满意")
    shopper.locator('form[action$="/act/rate"] button').click()
    shopper.wait_for_selector(f"text={words['rated']}")
    assert shopper.locator('form[action$="/act/rate"]').count() == 0
    assert_accessible(shopper, "the closed and rated case")
    shots(shopper, "4-rated")
    assert not errors, errors


@pytest.mark.parametrize("language", LANGUAGES)
def test_two_tabs_the_second_submit_gets_the_fresh_page(
    browser: Any, live: tuple[str, Engine], language: str, shots: Shots
) -> None:
    base, engine = live
    context = person(browser, base, language)
    first, second = context.new_page(), context.new_page()
    demo_sign_in(first, CONSUMER.id)
    case = engine.cases.list_cases(actor=CONSUMER).data[0]
    url = f"/console/cases/{case.id}"
    first.goto(url)
    second.goto(url)
    first.fill("#message-body", "第一个标签页")
    first.locator('form[action$="/act/comment"] button').click()
    first.wait_for_selector("text=第一个标签页 >> nth=0")
    second.fill("#message-body", "second tab's words")
    second.locator('form[action$="/act/comment"] button').click()
    second.wait_for_selector("#status .problem")
    assert WORDS[language]["stale"] in status_text(second)
    assert second.locator("#message-body").input_value() == "second tab's words"  # nothing lost
    assert "第一个标签页" in second.locator("#messages-heading + ol").inner_text()  # the fresh page
    assert_accessible(second, "the stale answer")
    shots(second, "stale-second-tab")
    # Sent again, it goes through.
    second.locator('form[action$="/act/comment"] button').click()
    second.wait_for_selector("#messages-heading + ol >> text=second tab's words")


def test_a_script_in_a_subject_filed_over_the_api_never_runs(
    browser: Any, live: tuple[str, Engine], shots: Shots
) -> None:
    base, engine = live
    payload = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'
    filed = httpx2.post(
        f"{base}/v1/cases",
        headers={"Authorization": f"Bearer {token_for(engine, CONSUMER)}"},
        json={
            "merchant_id": "m-1001",
            "order_ref": "TB-XSS",
            "subject": payload,
            "description": payload,
            "claim": {"amount": 100, "currency": "CNY"},
        },
        timeout=60,
    )
    assert filed.status_code == 201, filed.text
    page = person(browser, base, "en").new_page()
    dialogs: list[str] = []

    def dismiss(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    demo_sign_in(page, CONSUMER.id)
    page.goto(f"/console/cases/{filed.json()['id']}")
    assert page.locator("h1").inner_text() == payload  # shown as text
    page.goto("/console/cases")
    merchant = person(browser, base, "en").new_page()
    demo_sign_in(merchant, SHOP.id)
    assert page.evaluate("window.__xss") is None and merchant.evaluate("window.__xss") is None
    assert not dialogs
    shots(page, "xss-as-text")


def test_a_non_party_gets_404(browser: Any, live: tuple[str, Engine], shots: Shots) -> None:
    base, engine = live
    case = engine.cases.list_cases(actor=CONSUMER).data[0]
    page = person(browser, base, "zh-CN").new_page()
    page.goto("/console/sign-in")
    page.get_by_label(WORDS["zh-CN"]["token"]).fill(token_for(engine, Actor("c-9999", "consumer")))
    page.locator("form:has(#token) button").click()
    page.wait_for_url("**/console/cases**")
    answer = page.goto(f"/console/cases/{case.id}")
    assert answer is not None and answer.status == 404
    assert WORDS["zh-CN"]["not_found"] in page.locator("h1").inner_text()
    assert_accessible(page, "the 404 page")
    shots(page, "non-party-404")


@contextmanager
def attacker_site(target: str) -> Iterator[str]:
    """Another site (localhost, not 127.0.0.1) whose page posts a form to the console."""
    page = (
        "<!doctype html><html lang=en><title>prize</title><form method=post action='" + target + "'>"
        "<input type=hidden name=body value='forged'><input type=hidden name=version value='1'>"
        "<button id=go>win</button></form></html>"
    ).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_cross_site_form_post_is_refused(browser: Any, live: tuple[str, Engine], shots: Shots) -> None:
    base, engine = live
    case = engine.cases.list_cases(actor=CONSUMER).data[0]
    before = engine.cases.get(actor=CONSUMER, case_id=case.id).version
    context = person(browser, base, "en")
    victim = context.new_page()
    demo_sign_in(victim, CONSUMER.id)  # signed in: the session cookie is in this browser
    with attacker_site(f"{base}/console/cases/{case.id}/act/comment") as evil:
        victim.goto(evil)
        victim.locator("#go").click()
        victim.wait_for_load_state()
        shots(victim, "after-forged-post")
    assert engine.cases.get(actor=CONSUMER, case_id=case.id).version == before  # nothing happened
    assert "/console/sign-in" in victim.url or "Form refused" in victim.content()
