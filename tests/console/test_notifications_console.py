"""The console's notification inbox and webhook endpoint pages over the real app and database:
the unread count in every page's header, the list, mark read (one, all), the preferences, and
the endpoints (register with event types, the secret shown once, rotate, disable, failed
deliveries re-sent), each form with its CSRF token and a 303 without htmx; a merchant sees only
their own merchant id's endpoints, a consumer none."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from notify.rules import default_rules
from outbox import endpoints
from outbox.fanout import fan_out
from outbox.hook import OutboxHook
from outbox.inbox import unread_count
from runtime.engine import Engine
from store.tables import DELIVERIES, WEBHOOK_ENDPOINTS
from tests.support.actors import ADMIN, CONSUMER, MERCHANT, OTHER_MERCHANT
from tests.support.builders import new_case
from tests.support.console import Browserless, csrf_of

Web = Callable[[], Browserless]
UNREAD = re.compile(r'id="unread-notices"[^>]*>[^<]*<span class="badge">(\d+)')
SECRET = re.compile(r'<code id="secret-value">(whsec_[A-Za-z0-9+/=]+)</code>')


@pytest.fixture
def claims(engine: Engine) -> list[str]:
    """Two complaints against merchant m-1, written with the outbox on and fanned out: the
    merchant's inbox holds their new-claim notices."""
    engine.cases.on_written = (OutboxHook(default_rules()),)
    filed = [engine.cases.file(actor=CONSUMER, new_case=new_case(merchant_id="m-1")).id for _ in range(2)]
    fan_out(engine.db, engine.clock.now())
    return filed


def unread_shown(html: str) -> int:
    found = UNREAD.search(html)
    assert found, "the header shows no unread count"
    return int(found.group(1))


def test_the_header_counts_unread_notices_on_every_page(web: Web, engine: Engine, claims: list[str]) -> None:
    shop = web()
    shop.sign_in(MERCHANT)
    expected = unread_count(engine.cases, MERCHANT)
    assert expected >= 2
    for path in ("/console/inbox", f"/console/cases/{claims[0]}", "/console/notifications", "/console/webhooks"):
        page = shop.client.get(path)
        assert page.status_code == 200, path
        assert unread_shown(page.text) == expected, path
    consumer = web()
    consumer.sign_in(CONSUMER)
    assert unread_shown(consumer.client.get("/console/cases").text) == unread_count(engine.cases, CONSUMER)


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_the_inbox_lists_notices_and_marks_one_then_all_read(
    web: Web, engine: Engine, claims: list[str], language: str
) -> None:
    shop = web()
    shop.client.headers["accept-language"] = language
    shop.sign_in(MERCHANT)
    page = shop.client.get("/console/notifications")
    assert page.status_code == 200
    ids = [int(i) for i in re.findall(r'name="ids" value="(\d+)"', page.text)]
    before = unread_count(engine.cases, MERCHANT)
    assert len(ids) == before >= 2
    assert claims[0] in page.text  # the notice links its case
    assert ("Mark read" if language == "en" else "标为已读") in page.text
    # The notices in the page's language, whatever the contact's (none is set here).
    assert (f"New claim {claims[0]}" if language == "en" else f"新的投诉：{claims[0]}") in page.text

    # One notice: without htmx, a 303 back to the inbox with the status line's notice.
    answer = shop.post("/console/notifications/read", {"csrf_token": csrf_of(page.text), "ids": str(ids[0])})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/notifications?notice=marked_read"
    assert unread_count(engine.cases, MERCHANT) == before - 1
    shown = shop.client.get(answer.headers["location"])
    assert unread_shown(shown.text) == before - 1
    assert ("Marked read." if language == "en" else "已标为已读。") in shown.text

    # All of them, with htmx: the content block comes back, the status swapped out of band.
    answer = shop.post(
        "/console/notifications/read", {"csrf_token": csrf_of(shown.text)}, headers={"HX-Request": "true"}
    )
    assert answer.status_code == 200
    assert 'hx-swap-oob="true"' in answer.text and "<html" not in answer.text
    assert unread_count(engine.cases, MERCHANT) == 0
    assert 'name="ids"' not in answer.text  # no "mark read" button is left


def test_marking_read_needs_the_sessions_token_and_only_the_callers_notices(
    web: Web, engine: Engine, claims: list[str]
) -> None:
    shop = web()
    shop.sign_in(MERCHANT)
    page = shop.client.get("/console/notifications")
    ids = re.findall(r'name="ids" value="(\d+)"', page.text)
    before = unread_count(engine.cases, MERCHANT)
    for token in ("", "0" * 64):
        assert shop.post("/console/notifications/read", {"csrf_token": token}).status_code == 403
    assert unread_count(engine.cases, MERCHANT) == before
    # Another merchant may not mark m-1's notices: 404, nothing changed.
    other = web()
    other.sign_in(OTHER_MERCHANT)
    answer = other.post(
        "/console/notifications/read", {"csrf_token": other.csrf("/console/notifications"), "ids": ids[0]}
    )
    assert answer.status_code == 404
    assert unread_count(engine.cases, MERCHANT) == before


def test_preferences_choose_kinds_by_email_and_the_digest(web: Web, engine: Engine) -> None:
    shop = web()
    shop.sign_in(MERCHANT)
    token = shop.csrf("/console/notifications")
    answer = shop.client.post(
        "/console/notifications/preferences",
        data={
            "csrf_token": token,
            "email": "claims@shop.example",
            "language": "zh-CN",
            "kinds": ["new_claim", "ruling"],
            "digest": "on",
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/notifications?notice=preferences_saved"
    page = shop.client.get("/console/notifications").text
    assert 'value="claims@shop.example"' in page
    assert re.search(r'value="new_claim" checked', page) and re.search(r'value="ruling" checked', page)
    assert not re.search(r'value="offer" checked', page)  # an offer only in the inbox
    assert re.search(r'name="digest" checked', page)
    # Nothing ticked: every kind only in the inbox, no digest.
    shop.post(
        "/console/notifications/preferences", {"csrf_token": token, "email": "claims@shop.example", "language": "en"}
    )
    page = shop.client.get("/console/notifications").text
    assert " checked" not in page.split('id="preferences"')[1]
    # A bad address is refused with the reason, and nothing changes.
    refused = shop.post(
        "/console/notifications/preferences", {"csrf_token": token, "email": "no address", "language": "en"}
    )
    assert refused.status_code == 422 and "not an e-mail address" in refused.text
    assert 'value="claims@shop.example"' in shop.client.get("/console/notifications").text


def test_a_merchant_registers_rotates_and_disables_their_own_endpoint(web: Web, engine: Engine) -> None:
    shop = web()
    shop.sign_in(MERCHANT)
    page = shop.client.get("/console/webhooks")
    assert page.status_code == 200 and 'id="no-endpoints"' in page.text
    assert 'name="merchant_id"' not in page.text  # a merchant's endpoints are always their own
    answer = shop.client.post(
        "/console/webhooks",
        data={
            "csrf_token": csrf_of(page.text),
            "url": "http://127.0.0.1:9/hook",
            "description": "ERP",
            "event_types": ["case.filed", "case.ruled"],
        },
        follow_redirects=False,
    )
    assert answer.status_code == 200  # the page itself: the secret is shown once, never in a URL
    secret = SECRET.search(answer.text)
    assert secret
    [made] = endpoints.list_endpoints(engine.db, MERCHANT)
    assert made.merchant_id == "m-1" and made.event_types == ("case.filed", "case.ruled") and made.enabled
    with engine.db.read() as session:
        stored = session.execute(WEBHOOK_ENDPOINTS.select()).one()
    assert stored.secret == secret.group(1)
    # Shown once: the page read again does not carry it.
    assert secret.group(1) not in shop.client.get("/console/webhooks").text

    rotated = shop.post(f"/console/webhooks/{made.id}/rotate", {"csrf_token": csrf_of(answer.text)})
    assert rotated.status_code == 200
    new_secret = SECRET.search(rotated.text)
    assert new_secret and new_secret.group(1) != secret.group(1)

    disabled = shop.post(f"/console/webhooks/{made.id}/enabled", {"csrf_token": csrf_of(rotated.text)})
    assert disabled.status_code == 303
    assert disabled.headers["location"] == "/console/webhooks?notice=endpoint_disabled"
    assert not endpoints.get(engine.db, MERCHANT, made.id).enabled

    # Another merchant sees none of it and may change none of it.
    other = web()
    other.sign_in(OTHER_MERCHANT)
    assert made.id not in other.client.get("/console/webhooks").text
    token = other.csrf("/console/webhooks")
    assert other.post(f"/console/webhooks/{made.id}/rotate", {"csrf_token": token}).status_code == 404
    assert other.post(f"/console/webhooks/{made.id}/enabled", {"csrf_token": token, "enabled": "on"}).status_code == 404
    assert other.client.get(f"/console/webhooks/{made.id}/failed").status_code == 404
    assert not endpoints.get(engine.db, MERCHANT, made.id).enabled


def test_endpoint_forms_need_the_token_and_the_role(web: Web, engine: Engine) -> None:
    shop = web()
    shop.sign_in(MERCHANT)
    answer = shop.post("/console/webhooks", {"csrf_token": "", "url": "http://127.0.0.1:9/hook"})
    assert answer.status_code == 403
    assert endpoints.list_endpoints(engine.db, MERCHANT) == []
    refused = shop.post("/console/webhooks", {"csrf_token": shop.csrf("/console/webhooks"), "url": "ftp://x"})
    assert refused.status_code == 422 and 'value="ftp://x"' in refused.text  # the typed URL kept
    consumer = web()
    consumer.sign_in(CONSUMER)
    assert consumer.client.get("/console/webhooks").status_code == 403
    token = consumer.csrf("/console/cases")
    assert consumer.post("/console/webhooks", {"csrf_token": token, "url": "http://127.0.0.1:9/h"}).status_code == 403


def test_an_admin_lists_every_endpoint_and_resends_failed_deliveries(
    web: Web, engine: Engine, claims: list[str]
) -> None:
    mine, _ = endpoints.register(
        engine.db, MERCHANT, url="http://127.0.0.1:9/m1", now=engine.clock.now(), development=True
    )
    admin = web()
    admin.sign_in(ADMIN)
    page = admin.client.get("/console/webhooks")
    assert mine.id in page.text and 'name="merchant_id"' in page.text
    answer = admin.post(
        "/console/webhooks",
        {"csrf_token": csrf_of(page.text), "url": "http://127.0.0.1:9/all", "merchant_id": "m-2"},
    )
    assert answer.status_code == 200 and SECRET.search(answer.text)
    assert {e.merchant_id for e in endpoints.list_endpoints(engine.db, ADMIN)} == {"m-1", "m-2"}

    # Deliveries to the merchant's endpoint that failed after the last retry.
    fan_out(engine.db, engine.clock.now())  # nothing new: the claims were fanned out before
    with engine.db.read() as session:
        assert session.execute(DELIVERIES.select().where(DELIVERIES.c.target == mine.id)).first() is None
    engine.cases.execute(actor=CONSUMER, case_id=claims[0], name="comment", data={"body": "hello"})
    fan_out(engine.db, engine.clock.now())
    engine.db.run_write(
        lambda s: s.execute(
            DELIVERIES.update()
            .where(DELIVERIES.c.target == mine.id)
            .values(status="failed", attempts=10, last_status=500, last_error="HTTP 500")
        )
    )
    failed = admin.client.get(f"/console/webhooks/{mine.id}/failed")
    assert failed.status_code == 200
    ids = re.findall(r'name="ids" value="(\d+)"', failed.text)
    assert ids and "HTTP 500" in failed.text
    answer = admin.post(f"/console/webhooks/{mine.id}/resend", {"csrf_token": csrf_of(failed.text), "ids": ids[0]})
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/console/webhooks/{mine.id}/failed?notice=resent"
    with engine.db.read() as session:
        statuses = {
            r.pk: r.status for r in session.execute(DELIVERIES.select().where(DELIVERIES.c.target == mine.id)).all()
        }
    assert statuses[int(ids[0])] == "pending"
    # The merchant sees it too (their own endpoint), and may re-send the rest.
    shop = web()
    shop.sign_in(MERCHANT)
    assert shop.client.get(f"/console/webhooks/{mine.id}/failed").status_code == 200
