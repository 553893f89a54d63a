"""Oversight in a real browser (Playwright on Debian's Chromium, live server, demo data), in
Chinese and English with screenshots: an auditor moves the replay slider to an early seq and
sees the in-browser verification pass, then one byte of one stored event is changed in the
database and the same page shows the break at that seq; an overseer opens the dashboards, the
hotspot chart and table show the seeded figures and the CSV downloads. axe finds no serious or
critical violation on these pages."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from cases.review import sample_period, week_start
from cases.sweep import queue
from runtime.engine import Engine
from tests.support.axe import assert_accessible
from tests.support.builders import new_case
from tests.support.console import token_for
from workflow.model import Actor

AUDITOR = Actor("aud-1", "auditor")
Shots = Callable[[Any, str], None]
WORDS = {
    "en": {"verified": "Verified", "broken": "Broken: the chain does not hold at event 3.", "filed": "Filed"},
    "zh-CN": {"verified": "已验证", "broken": "已损坏：哈希链在第 3 个事件处断开。", "filed": "已提交"},
}


def person(browser: Any, base: str, language: str) -> Any:
    context = browser.new_context(locale=language, base_url=base, timezone_id="Asia/Shanghai", accept_downloads=True)
    context.set_default_timeout(10_000)
    return context


def demo_sign_in(page: Any, who: str) -> None:
    page.goto("/console/sign-in")
    page.locator(f'form:has(input[name="demo_user"][value="{who}"]) button').click()
    page.wait_for_url("**/console/**")


@pytest.mark.parametrize("language", list(WORDS))
def test_auditor_replays_and_verifies_in_the_browser(
    browser: Any, live: tuple[str, Engine], language: str, shots: Shots
) -> None:
    base, engine = live
    words = WORDS[language]
    case = max(engine.cases.list_cases(actor=AUDITOR, limit=50).data, key=lambda c: c.version)
    assert case.version >= 4
    context = person(browser, base, language)
    page = context.new_page()
    demo_sign_in(page, "aud-1")
    page.goto(f"/console/cases/{case.id}/history")
    badge = page.locator("#verification")
    badge.and_(page.locator('[data-result="verified"]')).wait_for()
    assert words["verified"] in badge.inner_text()
    assert str(case.version) in badge.inner_text()
    shots(page, "01-verified")
    assert_accessible(page, "case history")
    # The slider moves the replay to an early seq without reloading the page.
    page.evaluate("window.__same_page = true")
    slider = page.locator("#replay-seq")
    slider.fill("1")
    page.locator('#replayed[data-seq="1"]').wait_for()
    assert words["filed"] in page.locator('#replayed [data-field="state"]').inner_text()
    assert page.evaluate("window.__same_page") is True
    shots(page, "02-replayed-at-seq-1")
    # One byte of the third event's stored body changes in the database.
    with engine.db.engine.begin() as connection:
        changed = connection.execute(
            text('UPDATE events SET body = replace(body, \'"at":"20\', \'"at":"21\') WHERE case_id = :c AND seq = 3'),
            {"c": case.id},
        )
        assert changed.rowcount == 1
    page.goto(f"/console/cases/{case.id}/history")
    badge.and_(page.locator('[data-result="broken"]')).wait_for()
    assert badge.get_attribute("data-broken-seq") == "3"
    assert badge.inner_text() == words["broken"]
    assert "broken" in (page.locator("#event-3").get_attribute("class") or "")
    shots(page, "03-broken-at-seq-3")
    context.close()


@pytest.mark.parametrize("language", list(WORDS))
def test_overseer_reads_the_dashboards_and_downloads_csv(
    browser: Any, live: tuple[str, Engine], language: str, shots: Shots
) -> None:
    base, engine = live
    context = person(browser, base, language)
    page = context.new_page()
    demo_sign_in(page, "aud-1")
    page.goto("/console/dashboards")
    chart = page.locator("#hotspots-chart")
    chart.wait_for()
    bars = chart.locator("g.bar")
    rows = page.locator("#hotspots-table tbody tr")
    assert bars.count() == rows.count() > 0
    first_bar = bars.first.get_attribute("data-value")
    first_cell = rows.first.locator('td[data-column="complaints"]').get_attribute("data-value")
    assert first_bar == first_cell
    # The demo's complaints, counted by the database, are the table's total.
    demo_total = sum(
        int(v)
        for v in page.locator('#hotspots-table td[data-column="complaints"]').evaluate_all(
            "cells => cells.map(c => c.dataset.value)"
        )
    )
    assert demo_total == engine.cases.count_cases()
    shots(page, "01-dashboards")
    assert_accessible(page, "dashboards")
    with page.expect_download() as download_info:
        page.locator("#hotspots-section a[download]").click()
    download = download_info.value
    assert download.suggested_filename.startswith("hotspots_") and download.suggested_filename.endswith(".csv")
    content = Path(download.path()).read_text(encoding="utf-8").splitlines()
    assert content[0] == "week,category,complaints,previous_week,change,change_percent"
    assert len(content) == rows.count() + 1
    context.close()


REVIEW_WORDS = {
    "en": {"scored": "Lawful basis applied: 2", "flagged": "You flagged this case", "upheld": "Upheld"},
    "zh-CN": {"scored": "依法依规: 2", "flagged": "您已标记此案", "upheld": "采纳"},
}


@pytest.mark.parametrize("language", list(REVIEW_WORDS))
def test_reviewer_scores_and_flags_a_redacted_case_and_the_senior_sees_it(
    browser: Any, live: tuple[str, Engine], language: str, shots: Shots
) -> None:
    base, engine = live
    words = REVIEW_WORDS[language]
    service = engine.cases
    consumer = Actor("c-2001", "consumer")
    case = service.file(
        actor=consumer,
        new_case=new_case(
            consumer_id="c-2001",
            merchant_id="m-1001",
            order_ref="TB-555",
            description="我叫王芳，电话13700001111，耳机是假的。",
        ),
    )
    if case.mediator_id is None:
        case = service.execute(actor=Actor("med-li", "mediator"), case_id=case.id, name="assign")
    service.execute(actor=Actor("mu-m-1001", "merchant", merchant_id="m-1001"), case_id=case.id, name="accept_claim")
    service.execute(actor=Actor(case.mediator_id or "med-li", "mediator"), case_id=case.id, name="close")
    zone = ZoneInfo("Asia/Shanghai")
    dealt = sample_period(
        service, engine.triage.review, Actor("adm-1", "admin"), since=week_start(engine.clock.now(), zone), zone=zone
    )
    assert case.id in dealt.assigned
    context = person(browser, base, language)
    page = context.new_page()
    demo_sign_in(page, "reviewer-1")
    page.wait_for_url("**/console/reviews*")
    page.locator(f'#review-queue a:text("{case.id}")').click()
    page.wait_for_url(f"**/console/reviews/{case.id}")
    statement = page.locator("#consumer-statement").inner_text()
    assert "王芳" not in statement and "13700001111" not in statement
    assert "[姓名 name]" in statement and "[手机号 phone]" in statement
    assert "TB-555" not in page.content() and "c-2001" not in page.locator("#review").inner_text()
    shots(page, "01-redacted-case")
    assert_accessible(page, "review page")
    for item, score in (("lawful_basis", 2), ("fairness", 4), ("timeliness", 5), ("clarity", 3)):
        page.locator(f'input[name="score_{item}"][value="{score}"]').check()
    page.locator("#review-comment").fill("裁决依据不明确")
    page.locator('form[action$="/scores"] button').click()
    page.locator("#my-scores").wait_for()
    assert words["scored"] in page.locator("#my-scores").inner_text()
    page.locator("#flag-reason").fill("请复核裁决依据")
    page.locator('form[action$="/flag"] button').click()
    page.locator("#flagged").wait_for()
    assert words["flagged"] in page.locator("#flagged").inner_text()
    shots(page, "02-scored-and-flagged")
    context.close()

    senior = person(browser, base, language).new_page()
    demo_sign_in(senior, "sen-zhao")
    senior.goto("/console/flags")
    row = senior.locator(f"#flag-{case.id}")
    assert "请复核裁决依据" in row.inner_text() and row.get_attribute("data-open") == "yes"
    shots(senior, "03-senior-sees-the-flag")
    assert_accessible(senior, "flags")
    row.locator("textarea").fill("已复盘")
    row.locator("button").click()
    senior.wait_for_url("**/console/flags?notice=done")
    assert senior.locator(f"#flag-{case.id}").get_attribute("data-open") == "no"
    assert words["upheld"] in senior.locator(f"#flag-{case.id}").inner_text()
    shots(senior, "04-resolved")
    senior.context.close()


def test_a_transition_in_one_browser_appears_in_the_others_queue_within_3_seconds(
    browser: Any, live: tuple[str, Engine], shots: Shots
) -> None:
    base, engine = live
    mediator = Actor("med-li", "mediator")
    items, _ = queue(engine.cases, actor=mediator, limit=100)
    target = next(i.case for i in items if i.case.state in ("filed", "assigned", "mediating"))
    watcher = person(browser, base, "zh-CN").new_page()
    demo_sign_in(watcher, "med-li")
    watcher.goto("/console/queue")
    row = watcher.locator(f"#q-{target.id}")
    row.wait_for()
    before = watcher.locator("#queue").get_attribute("data-fingerprint")
    watcher.evaluate("window.__same_page = true")
    watcher.locator("#q-merchant").fill("typing, not sent")  # what the mediator types stays
    # The case's consumer withdraws it in another browser.
    consumer = person(browser, base, "en").new_page()
    consumer.goto("/console/sign-in")
    consumer.locator("#token").fill(token_for(engine, Actor(target.consumer_id, "consumer")))
    consumer.locator("form:has(#token) button").click()
    consumer.wait_for_url("**/console/**")
    consumer.goto(f"/console/cases/{target.id}")
    consumer.locator('form[action$="/act/withdraw"] button').click()
    consumer.locator("#case").wait_for()
    withdrawn = time.monotonic()
    row.wait_for(state="detached", timeout=3_000)
    assert time.monotonic() - withdrawn <= 3.0
    assert watcher.locator("#queue").get_attribute("data-fingerprint") != before
    assert watcher.evaluate("window.__same_page") is True  # no full reload
    assert watcher.locator("#q-merchant").input_value() == "typing, not sent"
    shots(watcher, "queue-after-the-other-browser-withdrew")
    watcher.context.close()
    consumer.context.close()


JOURNEY_WORDS = {
    "en": {"paused": "Clocks that wait for the answer are paused", "closed": "Closed"},
    "zh-CN": {"paused": "等待答复期间相关计时暂停", "closed": "已结案"},
}


def submit(page: Any, selector: str) -> None:
    """Click a case form's button and wait for the server's answer (htmx swaps the case in)."""
    with page.expect_response(lambda r: "/act/" in r.url and r.request.method == "POST") as answer:
        page.locator(selector).click()
    assert answer.value.status == 200, answer.value.text()
    page.wait_for_load_state("networkidle")


def journey_case(engine: Engine, merchant: str, **changes: Any) -> str:
    filed = engine.cases.file(
        actor=Actor("c-2001", "consumer"),
        new_case=new_case(consumer_id="c-2001", merchant_id=merchant, order_ref=f"J-{merchant}", **changes),
    )
    return filed.id


@pytest.mark.parametrize("language", list(JOURNEY_WORDS))
def test_mediator_asks_settles_and_closes_the_most_urgent_case(
    browser: Any, live: tuple[str, Engine], language: str, shots: Shots
) -> None:
    base, engine = live
    words = JOURNEY_WORDS[language]
    case_id = journey_case(engine, "m-1001")
    holder = engine.cases.get(actor=AUDITOR, case_id=case_id).mediator_id or "med-li"
    mediator = person(browser, base, language).new_page()
    mediator.goto("/console/sign-in")
    mediator.locator("#token").fill(token_for(engine, Actor(holder, "mediator")))
    mediator.locator("form:has(#token) button").click()
    mediator.wait_for_url("**/console/queue*")
    mediator.locator("#q-merchant").fill("m-1001")
    mediator.locator("form.filters button").click()
    mediator.wait_for_url("**merchant=m-1001**")
    shots(mediator, "01-queue")
    assert_accessible(mediator, "mediator queue")
    mediator.locator(f"#q-{case_id} a").click()
    mediator.wait_for_url(f"**/console/cases/{case_id}")
    if mediator.locator('#workbench form[action$="/act/assign"] button').count():
        submit(mediator, '#workbench form[action$="/act/assign"] button')
    mediator.locator("#info-party").select_option("merchant")
    mediator.locator("#info-question").fill("请提供出厂检测报告")
    submit(mediator, 'form[action$="/act/request_info"] button')
    assert words["paused"] in mediator.locator("#workbench").inner_text()
    shots(mediator, "02-asked-clock-paused")
    assert_accessible(mediator, "mediator workbench")

    shop = person(browser, base, language).new_page()
    demo_sign_in(shop, "mu-m-1001")
    shop.goto(f"/console/cases/{case_id}")
    shop.locator("#statement").fill("产品出厂合格")
    submit(shop, 'form[action$="/act/respond"] button')
    shop.locator('textarea[id^="answer-"]').fill("检测报告已上传")
    submit(shop, 'form[action$="/act/provide_info"] button')

    mediator.reload()
    assert words["paused"] not in mediator.locator("#workbench").inner_text()
    submit(mediator, '#workbench form[action$="/act/start_mediation"] button')
    mediator.locator("#message-body").fill("建议商家部分退款 200 元了结")
    submit(mediator, "#message-body >> xpath=ancestor::form//button")
    shop.reload()
    shop.locator("#offer-amount").fill("200")
    submit(shop, 'form[action$="/act/propose_offer"] button')
    buyer = person(browser, base, language).new_page()
    demo_sign_in(buyer, "c-2001")
    buyer.goto(f"/console/cases/{case_id}")
    submit(buyer, 'form[action$="/act/accept_offer"] button')
    mediator.reload()
    submit(mediator, '#workbench form[action$="/act/settle"] button')
    submit(mediator, '#workbench form[action$="/act/close"] button')
    assert words["closed"] in mediator.locator("#now-heading + p").inner_text()
    shots(mediator, "03-closed")
    done = engine.cases.get(actor=AUDITOR, case_id=case_id)
    assert (done.state, done.outcome, done.awarded_amount) == ("closed", "settled_by_offer", 20000)
    for page in (mediator, shop, buyer):
        page.context.close()


@pytest.mark.parametrize("language", list(JOURNEY_WORDS))
def test_senior_rules_on_an_escalation_with_an_awarded_amount(
    browser: Any, live: tuple[str, Engine], language: str, shots: Shots
) -> None:
    base, engine = live
    case_id = journey_case(engine, "m-1002", claim_amount=80000)
    holder = engine.cases.get(actor=AUDITOR, case_id=case_id).mediator_id
    if holder is None:
        engine.cases.execute(actor=Actor("med-li", "mediator"), case_id=case_id, name="assign")
        holder = "med-li"
    engine.cases.execute(actor=Actor(holder, "mediator"), case_id=case_id, name="escalate", reason="需要裁决")
    senior = person(browser, base, language).new_page()
    demo_sign_in(senior, "sen-zhao")
    senior.goto("/console/queue?state=escalated")
    senior.locator(f"#q-{case_id} a").click()
    senior.wait_for_url(f"**/console/cases/{case_id}")
    senior.locator("#rule-decision").select_option("partial")
    senior.locator("#rule-amount").fill("350.50")
    senior.locator("#rule-reason").fill("商品有瑕疵但已使用")
    # A ruling cites the desk's rulebook: an entry's checkbox, or its id when the desk lists none.
    entries = senior.locator('#rule-citations input[type="checkbox"]')
    if entries.count():
        entries.first.check()
    else:
        senior.locator("#rule-citations-ids").fill("crpl-24")
    shots(senior, "01-ruling-form")
    assert_accessible(senior, "ruling form")
    with senior.expect_response(lambda r: "/act/rule" in r.url) as answer:
        senior.locator('form[action$="/act/rule"] button').click()
    assert answer.value.status == 204  # settled: no longer the senior's to see; back to the start page
    senior.wait_for_url("**/console/queue*")
    shots(senior, "02-ruled")
    ruled = engine.cases.get(actor=AUDITOR, case_id=case_id)
    assert (ruled.state, ruled.outcome, ruled.awarded_amount) == ("settled", "partial", 35050)
    senior.context.close()
