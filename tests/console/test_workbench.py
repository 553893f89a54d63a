"""The mediator's case workbench through the real app (both backends): evidence previews served
inline and sandboxed only for images and PDFs whose bytes match their declared type, and the
open case page's polling (204 while the case is unchanged, the fresh case once it changed)."""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from datetime import timedelta

from console.reasons import reasons_shown
from runtime.engine import Engine
from sla.clock import ManualClock
from tests.support.actors import CONSUMER, MEDIATOR, MERCHANT
from tests.support.builders import new_case
from tests.support.console import ONE_PAGE_PDF, Browserless
from workflow.model import Actor, CaseSnapshot

Web = Callable[[], Browserless]
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 16
# An evidence file that only starts like a PDF (the renderer cannot draw it).
BROKEN_PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
FILES = {
    "photo.png": (PNG, "image/png"),
    "waybill.pdf": (ONE_PAGE_PDF, "application/pdf"),
    "broken.pdf": (BROKEN_PDF, "application/pdf"),
    "fake.png": (b"<html><script>alert(1)</script></html>", "image/png"),  # declared an image, is HTML
    "notes.txt": (b"plain words", "text/plain"),
}


def case_with_evidence(engine: Engine) -> tuple[str, Actor, dict[str, str]]:
    """A case whose consumer submitted the files, and the mediator holding it."""
    service = engine.cases
    case = service.file(actor=CONSUMER, new_case=new_case(order_ref="W-1"))
    for filename, (content, media_type) in FILES.items():
        service.add_evidence(actor=CONSUMER, case_id=case.id, content=content, media_type=media_type, filename=filename)
    service.execute(actor=CONSUMER, case_id=case.id, name="submit_evidence", data={})
    case = service.get(actor=CONSUMER, case_id=case.id)
    ids = {item.filename: item.evidence_id for item in case.evidence}
    return case.id, Actor(case.mediator_id or MEDIATOR.id, "mediator"), ids


def test_images_and_pdfs_whose_bytes_match_are_previewed_sandboxed_others_download(engine: Engine, web: Web) -> None:
    case_id, holder, ids = case_with_evidence(engine)
    mediator = web()
    mediator.sign_in(holder)
    page = mediator.client.get(f"/console/cases/{case_id}", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert "frame-src" not in page.headers["content-security-policy"]  # default-src 'none': no frames
    preview = f"/console/cases/{case_id}/evidence/{{}}/preview"
    html = page.text
    assert f'<img src="{preview.format(ids["photo.png"])}" alt="Preview of photo.png"' in html
    assert f'<img src="{preview.format(ids["waybill.pdf"])}" alt="Preview of waybill.pdf"' in html
    assert "<iframe" not in html  # the browser is never asked to show a PDF itself
    assert preview.format(ids["notes.txt"]) not in html  # text is not previewed: a download link only

    for filename in ("photo.png", "waybill.pdf"):
        shown = mediator.client.get(preview.format(ids[filename]))
        assert shown.status_code == 200
        if filename == "photo.png":
            assert shown.content == PNG
        else:  # the PDF's first page as a picture: 900 pixels wide, in the page's 3:2 proportions
            assert shown.content.startswith(b"\x89PNG\r\n\x1a\n")
            width, height = struct.unpack(">II", shown.content[16:24])
            assert (width, height) == (900, 600)
        assert shown.headers["content-type"] == "image/png"
        assert shown.headers["content-disposition"].startswith("inline; filename=")
        policy = shown.headers["content-security-policy"]
        assert policy.startswith("sandbox;") and "frame-ancestors 'self'" in policy and "script-src" not in policy
        assert shown.headers["x-frame-options"] == "SAMEORIGIN" and shown.headers["x-content-type-options"] == "nosniff"
    # A file whose bytes are not what it claims, and a type that is never previewed: downloads.
    # A PDF the renderer cannot draw is offered as the download only.
    for filename in ("fake.png", "notes.txt", "broken.pdf"):
        kept = mediator.client.get(preview.format(ids[filename]))
        assert kept.status_code == 200 and kept.content == FILES[filename][0]
        assert kept.headers["content-type"] == "application/octet-stream"
        assert kept.headers["content-disposition"].startswith("attachment; filename=")
        assert kept.headers["x-frame-options"] == "DENY"
    # The plain download stays a download, for images too.
    download = mediator.client.get(f"/console/cases/{case_id}/evidence/{ids['photo.png']}")
    assert download.headers["content-disposition"].startswith("attachment;")
    # The policies decide who sees the file: a merchant of another shop gets the 404 page.
    stranger = web()
    stranger.sign_in(Actor("mu-9", "merchant", merchant_id="m-9"))
    assert stranger.client.get(preview.format(ids["photo.png"])).status_code == 404


def test_the_parties_pages_keep_evidence_as_download_links(engine: Engine, web: Web) -> None:
    case_id, _, ids = case_with_evidence(engine)
    consumer = web()
    consumer.sign_in(CONSUMER)
    html = consumer.client.get(f"/console/cases/{case_id}").text
    assert f'/evidence/{ids["photo.png"]}" download' in html and "/preview" not in html and "<iframe" not in html


def test_the_open_case_page_answers_204_while_unchanged_and_the_fresh_case_once_changed(
    engine: Engine, web: Web
) -> None:
    service = engine.cases
    case = service.file(actor=CONSUMER, new_case=new_case(order_ref="W-2"))
    holder = Actor(case.mediator_id or MEDIATOR.id, "mediator")
    mediator = web()
    mediator.sign_in(holder)
    page = mediator.client.get(f"/console/cases/{case.id}")
    live = re.search(r'<div id="case-live" data-live="case" data-version="(\d+)" hx-get="([^"]+)"', page.text)
    assert live is not None and live.group(2) == f"/console/cases/{case.id}?seen={live.group(1)}"
    assert 'hx-trigger="every 2s" hx-target="#case" hx-swap="outerHTML"' in page.text
    poll = {"HX-Request": "true"}
    unchanged = mediator.client.get(live.group(2), headers=poll)
    assert unchanged.status_code == 204 and not unchanged.content
    assert (
        mediator.client.get(f"/console/cases/{case.id}", headers={"If-None-Match": page.headers["ETag"]}).status_code
        == 304
    )
    # Another person moves the case on: the next poll brings the case as it stands, as a fragment.
    service.execute(actor=MERCHANT, case_id=case.id, name="respond", data={"statement": "我们已核实"})
    changed = mediator.client.get(live.group(2), headers=poll)
    assert changed.status_code == 200 and "<html" not in changed.text
    assert changed.text.count('id="case"') == 1 and "我们已核实" in changed.text
    fresh = re.search(r'data-version="(\d+)"', changed.text)
    assert fresh is not None and int(fresh.group(1)) > int(live.group(1))
    assert changed.headers["ETag"] != page.headers["ETag"]
    assert mediator.client.get(f"/console/cases/{case.id}?seen={fresh.group(1)}", headers=poll).status_code == 204
    # Hidden cases stay hidden to the poll as to the page.
    stranger = web()
    stranger.sign_in(Actor("mu-9", "merchant", merchant_id="m-9"))
    assert stranger.client.get(live.group(2), headers=poll).status_code == 404


def filed_a_minute_apart(
    engine: Engine, count: int, order_prefix: str, merchant_of: Callable[[int], str]
) -> list[CaseSnapshot]:
    """``count`` complaints by the consumer, one a minute, against ``merchant_of(index)``."""
    clock = engine.cases.clock
    assert isinstance(clock, ManualClock)
    filed = []
    for index in range(count):
        clock.advance(timedelta(minutes=1))
        order = new_case(order_ref=f"{order_prefix}-{index}", merchant_id=merchant_of(index))
        filed.append(engine.cases.file(actor=CONSUMER, new_case=order))
    return filed


def test_my_cases_are_in_order_of_last_activity_across_pages(engine: Engine, web: Web) -> None:
    """More cases than a page (50): three of the oldest filings are the latest touched, so they
    lead the first page, not the last; every case appears once, in the order of activity."""
    service = engine.cases
    clock = service.clock
    assert isinstance(clock, ManualClock)
    filed = [case.id for case in filed_a_minute_apart(engine, 53, "A", lambda index: f"m-{index % 7}")]
    touched = [filed[20], filed[0], filed[10]]  # oldest filings, touched last (the last touch first in the list)
    for case_id in touched:
        clock.advance(timedelta(minutes=1))
        service.execute(actor=CONSUMER, case_id=case_id, name="comment", data={"body": "还有进展吗？"})
    expected = [*reversed(touched), *[c for c in reversed(filed) if c not in touched]]

    consumer = web()
    consumer.sign_in(CONSUMER)
    shown: list[str] = []
    pages = 0
    url: str | None = "/console/cases"
    while url is not None:
        page = consumer.client.get(url, headers={"Accept-Language": "en"})
        assert page.status_code == 200
        table = page.text.split("<tbody>")[1].split("</tbody>")[0]
        shown += re.findall(r'<a href="/console/cases/([A-Z0-9-]+)">', table)
        older = re.search(r'<a href="(/console/cases\?cursor=[A-Za-z0-9_-]+)">Older cases</a>', page.text)
        url = older.group(1) if older else None
        pages += 1
    assert pages == 2
    assert shown == expected
    assert consumer.client.get("/console/cases?cursor=not-a-cursor").status_code in (409, 422)


def test_the_cases_page_lists_what_a_mediator_or_auditor_may_see(engine: Engine, web: Web) -> None:
    """Not only consumers have a "Cases" page: an auditor's lists every case, a mediator's the
    cases their view policies show (those routed to them), the newest activity first; a
    merchant's only their own. A regression listed, for everyone, the cases whose consumer id was
    the viewer's own: nothing."""
    filed = filed_a_minute_apart(engine, 4, "L", lambda index: "m-other" if index % 2 else str(MERCHANT.merchant_id))
    newest_first = [case.id for case in reversed(filed)]
    routed = filed[0].mediator_id
    assert routed is not None  # the desk's triage routes a filing to a mediator with room
    viewers = {
        Actor("a-1", "auditor"): newest_first,
        Actor(routed, "mediator"): [case.id for case in reversed(filed) if case.mediator_id == routed],
        MERCHANT: [case.id for case in reversed(filed) if case.merchant_id == MERCHANT.merchant_id],
    }
    for viewer, expected in viewers.items():
        browser = web()
        browser.sign_in(viewer)
        page = browser.client.get("/console/cases", headers={"Accept-Language": "en"})
        assert page.status_code == 200 and "<h1>Cases</h1>" in page.text, viewer
        shown = re.findall(r'<a href="/console/cases/([A-Z0-9-]+)">', page.text.split("<tbody>")[1])
        assert shown == expected, viewer


def test_a_disabled_actions_policy_reason_is_in_the_pages_language(engine: Engine, web: Web) -> None:
    """The mediator may not start mediation before the merchant responded (guards.cedar): the
    disabled button says why in the policy's words, Chinese on a zh page (its @reason_zh)."""
    service = engine.cases
    case = service.file(actor=CONSUMER, new_case=new_case(order_ref="R-1"))
    holder = Actor(case.mediator_id or MEDIATOR.id, "mediator")
    if case.mediator_id is None:
        service.execute(actor=holder, case_id=case.id, name="assign")
    mediator = web()
    mediator.sign_in(holder)

    def reason_of(language: str) -> str:
        page = mediator.client.get(f"/console/cases/{case.id}", headers={"Accept-Language": language}).text
        found = re.search(r'<p class="reason" id="why-start_mediation">([^<]*)</p>', page)
        assert found is not None, "start_mediation is not shown disabled"
        return found.group(1)

    english = "mediation starts only once the merchant has responded or its response clock has run out"
    assert english in reason_of("en")
    chinese = reason_of("zh-CN")
    assert "商家答复后或其答复时限届满后才能开始调解" in chinese and english not in chinese
    # A refusal no policy decided is said in the console's words on a zh page, with the permits
    # that would have allowed it in their Chinese words.
    decided = engine.cases.authorizer.decide(
        actor=CONSUMER, action="escalate", case=service.get(actor=CONSUMER, case_id=case.id), now=engine.clock.now()
    )
    assert not decided.allowed and decided.reasons[0].startswith("no policy permits escalate")
    in_chinese = reasons_shown(engine, "zh-CN", decided.reasons)
    assert in_chinese[0] == "当前状态下，没有任何策略允许您的角色执行此操作"
    assert "消费者或商家可以升级案件" in " ".join(in_chinese[1:])
    assert len(in_chinese) == len(decided.reasons) and not any(r in in_chinese for r in decided.reasons)
    assert reasons_shown(engine, "en", decided.reasons) == list(decided.reasons)
