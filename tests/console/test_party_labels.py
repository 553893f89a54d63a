"""What each party reads (issue #23, point 8) in the console and the notifications: served
from the WeChat-Shop-style example desk, whose states declare a label for the buyer and one
for the shop, the consumer's and the merchant's case pages, the consumer's list and the
merchant's inbox each show the viewer's own label (never the other party's), a reviewer,
for whom the desk declares none, reads the generic state title, and the notices to each
party end with that party's label; as the case moves, all of them follow the new state."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from outbox.dispatch import DispatchConfig, Dispatcher
from runtime.bootstrap import build_engine
from runtime.engine import Engine
from runtime.settings import Settings
from sla.clock import ManualClock
from tests.support.actors import T0
from tests.support.console import Browserless, console_client, token_for
from workflow.model import Actor

WECHAT_SHOP = Path(__file__).resolve().parents[2] / "examples" / "wechat_shop"
CONSUMER = Actor("c-1", "consumer")
MERCHANT = Actor("shop-staff-1", "merchant", "m-1")
MEDIATOR = Actor("rev-1", "mediator")
LABELS = {
    "shop_handling": {
        "consumer": "Waiting for the shop to handle your application (48 hours)",
        "merchant": "Handle this application within 48 hours, or it is agreed automatically",
    },
    "refused": {
        "consumer": "The shop refused - you may ask the platform to step in within 7 days",
        "merchant": "You refused the application; the buyer may ask the platform to step in",
    },
}
FILING: dict[str, Any] = {
    "merchant_id": "m-1",
    "order_ref": "WX-4200-0001",
    "category": "product_quality",
    "subject": "The kettle leaks",
    "description": "The kettle leaks from the base after two uses; I asked for a refund.",
    "claim": {"amount": 19900, "currency": "CNY"},
    "facts": {"request": "refund_only"},
}


@pytest.fixture
def shop(db_url: str) -> Iterator[Engine]:
    settings = Settings(
        environment="test", database_url=db_url, run_ticker=False, run_dispatcher=False, config_dir=WECHAT_SHOP
    )
    engine = build_engine(settings, clock=ManualClock(T0))  # the desk the settings name, as `disputes serve` does
    yield engine
    engine.dispose()


def signed_in(engine: Engine, actor: Actor) -> Browserless:
    session = console_client(engine)
    session.sign_in(actor)
    return session


def headers(engine: Engine, actor: Actor) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(engine, actor)}"}


def notices(session: Browserless, actor: Actor) -> dict[str, str]:
    """The actor's notices over HTTP, kind -> body (the latest of each kind)."""
    listed = session.client.get("/v1/notifications", headers=headers(session.engine, actor))
    assert listed.status_code == 200, listed.text
    return {notice["kind"]: notice["body"] for notice in reversed(listed.json()["data"])}


def dispatch(engine: Engine) -> None:
    dispatcher = Dispatcher(engine.cases, engine.notification_rules, DispatchConfig(timeout_seconds=1))
    try:
        dispatcher.run_once()
    finally:
        dispatcher.close()


def test_each_party_reads_its_own_label_in_the_console_and_its_notices(shop: Engine) -> None:
    consumer, merchant, mediator = (signed_in(shop, actor) for actor in (CONSUMER, MERCHANT, MEDIATOR))
    filed = consumer.client.post("/v1/cases", json=FILING, headers=headers(shop, CONSUMER))
    assert filed.status_code == 201, filed.text
    case_id = filed.json()["id"]
    mine, theirs = LABELS["shop_handling"]["consumer"], LABELS["shop_handling"]["merchant"]

    # The case page, as each party reads it.
    consumer_page = consumer.client.get(f"/console/cases/{case_id}").text
    merchant_page = merchant.client.get(f"/console/cases/{case_id}").text
    assert f'<strong id="party-state">{mine}</strong>' in consumer_page and theirs not in consumer_page
    assert f'<strong id="party-state">{theirs}</strong>' in merchant_page and mine not in merchant_page
    # A reviewer has no label of their own: the generic state title, neither party's words.
    reviewer_page = mediator.client.get(f"/console/cases/{case_id}").text
    assert '<strong id="party-state">shop_handling</strong>' in reviewer_page
    assert mine not in reviewer_page and theirs not in reviewer_page
    # The consumer's list and the merchant's inbox.
    listed = consumer.client.get("/console/cases").text
    assert mine in listed and theirs not in listed
    inbox = merchant.client.get("/console/inbox").text
    assert theirs in inbox and mine not in inbox

    # The notices: the acknowledgement to the buyer, the new claim to the shop.
    dispatch(shop)
    to_consumer, to_merchant = notices(consumer, CONSUMER), notices(merchant, MERCHANT)
    assert to_consumer["acknowledgement"].endswith(f"\nWhere it stands: {mine}")
    assert to_merchant["new_claim"].endswith(f"\nWhere it stands: {theirs}")
    assert theirs not in to_consumer["acknowledgement"] and mine not in to_merchant["new_claim"]

    # The shop refuses: every page now reads the new state's label, each in its party's words.
    refused = merchant.client.post(
        f"/v1/cases/{case_id}/transitions",
        json={"trigger": "refuse", "reason": "The buyer used the kettle for a month."},
        headers={
            **headers(shop, MERCHANT),
            "If-Match": merchant.client.get(f"/v1/cases/{case_id}", headers=headers(shop, MERCHANT)).headers["ETag"],
        },
    )
    assert refused.status_code == 200, refused.text
    assert LABELS["refused"]["consumer"] in consumer.client.get(f"/console/cases/{case_id}").text
    assert LABELS["refused"]["merchant"] in merchant.client.get(f"/console/cases/{case_id}").text
    assert LABELS["refused"]["merchant"] in merchant.client.get("/console/inbox").text
    assert LABELS["refused"]["consumer"] in consumer.client.get("/console/cases").text
    for session in (consumer, merchant, mediator):
        session.client.__exit__(None, None, None)
