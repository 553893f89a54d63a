"""The notification inbox and webhook endpoints in a real browser (Playwright driving Debian's
Chromium) against a live server, in Chinese and in English: a merchant sees the unread count in
the header, opens the inbox, marks a notice read and then all of them, and registers a webhook
endpoint (its secret shown once); axe on every page visited (no serious or critical violation)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from notify.rules import default_rules
from outbox import endpoints
from outbox.fanout import fan_out
from outbox.hook import OutboxHook
from outbox.inbox import unread_count
from runtime.engine import Engine
from tests.support.axe import assert_accessible
from tests.support.builders import new_case
from workflow.model import Actor

CONSUMER = Actor("c-2001", "consumer")  # the demo consumer (runtime/demo.py)
SHOP = Actor("mu-m-1001", "merchant", merchant_id="m-1001")
Shots = Callable[[Any, str], None]
WORDS = {
    "en": {
        "notifications": "Notifications",
        "mark_read": "Mark read",
        "mark_all": "Mark all read",
        "marked": "Marked read.",
        "register": "Register",
        "registered": "The endpoint is registered.",
        "endpoints": "Webhook endpoints",
    },
    "zh-CN": {
        "notifications": "通知",
        "mark_read": "标为已读",
        "mark_all": "全部标为已读",
        "marked": "已标为已读。",
        "register": "注册",
        "registered": "端点已注册。",
        "endpoints": "Webhook 端点",
    },
}


def unread_in_header(page: Any) -> int:
    found = re.search(r"(\d+)", str(page.locator("#unread-notices .badge").inner_text()))
    assert found
    return int(found.group(1))


@pytest.mark.parametrize("language", list(WORDS))
def test_a_merchant_reads_notices_and_registers_an_endpoint(
    browser: Any, live: tuple[str, Engine], language: str, shots: Shots
) -> None:
    base, engine = live
    words = WORDS[language]
    # Two new claims against the demo shop, written with the outbox on and fanned out.
    engine.cases.on_written = (OutboxHook(default_rules()),)
    for _ in range(2):
        engine.cases.file(actor=CONSUMER, new_case=new_case(consumer_id=CONSUMER.id, merchant_id="m-1001"))
    fan_out(engine.db, engine.clock.now())
    unread = unread_count(engine.cases, SHOP)
    assert unread >= 2

    errors: list[str] = []
    context = browser.new_context(locale=language, base_url=base, timezone_id="Europe/Berlin")
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto("/console/sign-in")
    page.locator(f'form:has(input[name="demo_user"][value="{SHOP.id}"]) button').click()
    page.wait_for_url("**/console/**")
    assert unread_in_header(page) == unread
    assert_accessible(page, "the merchant's start page")

    # The inbox: mark one read (htmx swaps the page's content and the header's count follows
    # on the next page), then all.
    page.locator("#unread-notices").click()
    page.wait_for_url("**/console/notifications")
    assert page.locator("h1").inner_text() == words["notifications"]
    assert page.locator("#notices li.unread").count() == unread
    assert_accessible(page, "the notification inbox")
    shots(page, "1-inbox")
    page.locator("#notices li.unread").first.get_by_role("button", name=words["mark_read"]).click()
    page.wait_for_selector(f"#status:has-text('{words['marked']}')")
    # Playwright's retrying assertion: the status region (swapped out of band) may show before
    # htmx has settled the list it came with.
    expect(page.locator("#notices li.unread")).to_have_count(unread - 1)
    assert unread_count(engine.cases, SHOP) == unread - 1
    page.reload()
    assert unread_in_header(page) == unread - 1
    page.get_by_role("button", name=words["mark_all"]).click()
    page.wait_for_selector("#notices li.unread", state="detached")
    assert unread_count(engine.cases, SHOP) == 0
    page.reload()
    assert unread_in_header(page) == 0
    assert_accessible(page, "the inbox, all read")
    shots(page, "2-inbox-read")

    # A webhook endpoint for the shop's own merchant id, with two event types.
    page.get_by_role("link", name=words["endpoints"]).first.click()
    page.wait_for_url("**/console/webhooks")
    assert_accessible(page, "the webhook endpoints page")
    page.fill("#endpoint-url", "http://127.0.0.1:9/erp-hook")
    page.fill("#endpoint-description", "ERP")
    page.check('input[name="event_types"][value="case.filed"]')
    page.check('input[name="event_types"][value="case.timer_breached"]')
    page.locator("#register-endpoint button[type=submit]").click()
    page.wait_for_selector("#secret-value")
    secret = page.locator("#secret-value").inner_text()
    assert secret.startswith("whsec_")
    assert words["registered"] in page.locator("#status").inner_text()
    [made] = endpoints.list_endpoints(engine.db, SHOP)
    assert made.merchant_id == "m-1001" and made.event_types == ("case.filed", "case.timer_breached")
    assert page.locator(f"#endpoint-{made.id}").is_visible()
    assert_accessible(page, "the endpoint registered, its secret shown")
    shots(page, "3-endpoint-registered")
    page.goto("/console/webhooks")
    assert secret not in page.content()  # shown once
    assert errors == []
    context.close()
