"""Oversight in a real browser (Playwright on Debian's Chromium, live server, demo data), in
Chinese and English with screenshots: an auditor moves the replay slider to an early seq and
sees the in-browser verification pass, then one byte of one stored event is changed in the
database and the same page shows the break at that seq; an overseer opens the dashboards, the
hotspot chart and table show the seeded figures and the CSV downloads. axe finds no serious or
critical violation on these pages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from runtime.engine import Engine
from tests.support.axe import assert_accessible
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
