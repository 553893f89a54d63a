"""The mediator's case workbench in a real browser (Playwright on Debian's Chromium, live server,
demo data): an image of the evidence shows in its sandboxed preview, and with two browsers on
one case a transition in one appears on the other's open case page within 3 s, without a reload,
and not while a form on the page is being filled in."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from console.pdf_preview import png_bytes
from runtime.engine import Engine
from tests.support.axe import assert_accessible
from tests.support.builders import new_case
from tests.support.console import ONE_PAGE_PDF, token_for
from workflow.model import Actor

CONSUMER = Actor("c-2001", "consumer")  # the demo consumer
DESK = Actor("med-li", "mediator")  # a demo mediator
Shots = Callable[[Any, str], None]


def png(width: int, height: int) -> bytes:
    """A real PNG (red pixels), so that the browser decodes it."""
    return png_bytes(b"\xff\x00\x00" * width * height, width, height)


def signed_in(browser: Any, base: str, engine: Engine, actor: Actor, language: str = "en") -> Any:
    context = browser.new_context(locale=language, base_url=base, timezone_id="Asia/Shanghai")
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto("/console/sign-in")
    page.locator("#token").fill(token_for(engine, actor))
    page.locator("form:has(#token) button").click()
    page.wait_for_url("**/console/**")
    return page


def held_case(engine: Engine, order_ref: str) -> tuple[str, Actor]:
    """A new case of the demo consumer, with the mediator who holds it."""
    service = engine.cases
    case = service.file(actor=CONSUMER, new_case=new_case(consumer_id=CONSUMER.id, order_ref=order_ref))
    if case.mediator_id is None:
        service.execute(actor=DESK, case_id=case.id, name="assign")
        case = service.get(actor=DESK, case_id=case.id)
    return case.id, Actor(case.mediator_id or DESK.id, "mediator")


def test_the_workbench_previews_an_image_and_a_pdf_of_the_evidence(
    browser: Any, live: tuple[str, Engine], shots: Shots
) -> None:
    base, engine = live
    case_id, holder = held_case(engine, "P-1")
    service = engine.cases
    service.add_evidence(
        actor=CONSUMER, case_id=case_id, content=png(40, 30), media_type="image/png", filename="dent.png"
    )
    service.add_evidence(
        actor=CONSUMER, case_id=case_id, content=ONE_PAGE_PDF, media_type="application/pdf", filename="bill.pdf"
    )
    service.execute(actor=CONSUMER, case_id=case_id, name="submit_evidence", data={})
    page = signed_in(browser, base, engine, holder)
    page.goto(f"/console/cases/{case_id}")
    image = page.locator('figure.preview img[alt="Preview of dent.png"]')
    image.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [40, 30]  # decoded, not a broken icon
    # The PDF's first page, drawn on the server as a picture (console/pdf_preview.py).
    first_page = page.locator('figure.preview img[alt="Preview of bill.pdf"]')
    first_page.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=first_page.element_handle())
    assert first_page.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [900, 600]
    shots(page, "workbench-evidence-preview")
    assert_accessible(page, "the workbench with evidence previews")
    page.context.close()


def test_a_transition_in_one_browser_appears_on_the_others_open_case_page_within_3_seconds(
    browser: Any, live: tuple[str, Engine], shots: Shots
) -> None:
    base, engine = live
    case_id, holder = held_case(engine, "L-1")
    case = engine.cases.get(actor=holder, case_id=case_id)
    watcher = signed_in(browser, base, engine, holder, "zh-CN")
    watcher.goto(f"/console/cases/{case_id}")
    before = int(watcher.locator("#case-live").get_attribute("data-version"))
    watcher.evaluate("window.__same_page = true")
    # The merchant responds in another browser: the mediator's open page shows it.
    shop = signed_in(browser, base, engine, Actor("mu-l", "merchant", merchant_id=case.merchant_id))
    shop.goto(f"/console/cases/{case_id}")
    shop.locator("#statement").fill("The parcel left our depot on time.")
    with shop.expect_response(lambda r: r.url.endswith("/act/respond") and r.request.method == "POST") as answer:
        shop.locator('form[action$="/act/respond"] button').click()
    assert answer.value.status == 200
    responded = time.monotonic()
    watcher.locator("#statements", has_text="The parcel left our depot on time.").wait_for(timeout=3_000)
    assert time.monotonic() - responded <= 3.0
    assert int(watcher.locator("#case-live").get_attribute("data-version")) > before
    assert watcher.evaluate("window.__same_page") is True  # swapped in place, no reload
    shots(watcher, "01-the-merchants-response-appeared")

    # While the mediator types a question, a change waits: nothing typed is lost or swapped away.
    question = watcher.locator("#info-question")
    question.fill("请提供发货单")
    seen = watcher.locator("#case-live").get_attribute("data-version")
    engine.cases.execute(actor=CONSUMER, case_id=case_id, name="comment", data={"body": "还在等"})
    time.sleep(3.0)
    assert watcher.locator("#case-live").get_attribute("data-version") == seen
    assert question.input_value() == "请提供发货单"
    # Once the form is left as it was, the page catches up within the interval.
    question.fill("")
    question.blur()
    watcher.locator("#case", has_text="还在等").wait_for(timeout=3_000)
    assert watcher.evaluate("window.__same_page") is True
    shots(watcher, "02-caught-up-after-the-form")
    watcher.context.close()
    shop.context.close()
