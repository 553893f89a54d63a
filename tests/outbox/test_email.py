"""E-mails through a real SMTP server (aiosmtpd on 127.0.0.1), in the recipient's language, on
each database: the right recipient, subject and deadline; kinds left to the inbox are not
mailed; a daily digest gathers a day's notices in one message."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from desk.loader import load_desk
from intake.rulebook import Rulebook
from outbox.dispatch import DispatchConfig, Dispatcher
from outbox.inbox import forget_contact, get_contact, list_notices, set_contact
from outbox.mail import SmtpSettings
from runtime.engine import Engine
from sla.clock import ManualClock
from tests.support.actors import CONSUMER, MEDIATOR, MERCHANT, T0
from tests.support.builders import new_case
from tests.support.receivers import smtp_server
from workflow.errors import InvalidCommandError
from workflow.model import Actor


def _body(message: object) -> str:
    return message.get_content()  # type: ignore[attr-defined, no-any-return]


def mailing_dispatcher(engine: Engine, port: int, sender: str = "disputes@localhost") -> Dispatcher:
    """The engine's dispatcher, sending e-mail to the test SMTP server on ``port``."""
    smtp = SmtpSettings(host="127.0.0.1", port=port, sender=sender)
    return Dispatcher(engine.cases, engine.notification_rules, DispatchConfig(smtp=smtp))


def test_emails_in_both_languages(outbox_engine: Callable[..., Engine]) -> None:
    clock = ManualClock(T0)
    engine = outbox_engine(clock)
    now = clock.now()
    set_contact(
        engine.cases, CONSUMER, email="wang@example.cn", language="zh-CN", email_kinds=["*"], digest=False, now=now
    )
    set_contact(
        engine.cases,
        MERCHANT,
        email="ops@shop.example",
        language="en",
        email_kinds=["new_claim"],
        digest=False,
        now=now,
    )
    with smtp_server() as (port, received):
        dispatcher = mailing_dispatcher(engine, port, sender="desk@disputes.example")
        try:
            case = engine.cases.file(actor=CONSUMER, new_case=new_case(category="counterfeit"))
            dispatcher.run_once()
            engine.cases.execute(actor=MEDIATOR, case_id=case.id, name="assign")
            dispatcher.run_once()
        finally:
            dispatcher.close()
    by_recipient = {tuple(rcpts): message for rcpts, message in received}
    assert set(by_recipient) == {("wang@example.cn",), ("ops@shop.example",)}
    chinese = by_recipient[("wang@example.cn",)]
    assert chinese["Subject"] == f"投诉已受理：{case.id}"
    assert chinese["From"] == "desk@disputes.example"
    body = _body(chinese)
    assert "假冒商品" in body and "《中华人民共和国消费者权益保护法》第五十五条" in body
    assert "分配调解员: 2026-03-02 12:00（北京时间）" in body  # 04:00 UTC, in China Standard Time
    english = by_recipient[("ops@shop.example",)]
    assert english["Subject"] == f"New claim {case.id}: respond by 2026-03-04 02:00 UTC"
    assert "counterfeit goods" in _body(english)
    # The merchant takes only new claims by e-mail: its other notices stay in the inbox.
    assert len(received) == 2


def test_daily_digest_and_contact_rules(outbox_engine: Callable[..., Engine]) -> None:
    clock = ManualClock(T0)
    engine = outbox_engine(clock)
    with pytest.raises(InvalidCommandError):
        set_contact(engine.cases, CONSUMER, email="not an address", language="en", email_kinds=[], digest=False, now=T0)
    with pytest.raises(InvalidCommandError):
        set_contact(engine.cases, CONSUMER, email=None, language="fr", email_kinds=[], digest=False, now=T0)
    with pytest.raises(InvalidCommandError):
        set_contact(engine.cases, CONSUMER, email=None, language="en", email_kinds=["gossip"], digest=False, now=T0)
    set_contact(engine.cases, CONSUMER, email="li@example.com", language="en", email_kinds=["*"], digest=True, now=T0)
    assert get_contact(engine.cases, CONSUMER).digest
    with smtp_server() as (port, received):
        dispatcher = mailing_dispatcher(engine, port)
        try:
            first = engine.cases.file(actor=CONSUMER, new_case=new_case())
            second = engine.cases.file(actor=CONSUMER, new_case=new_case(order_ref="ORD-2"))
            dispatcher.run_once()  # the first digest: the notices so far, none mailed one by one
            clock.advance(timedelta(minutes=1))
            third = engine.cases.file(actor=CONSUMER, new_case=new_case(order_ref="ORD-3"))
            dispatcher.run_once()  # not twice a day
            assert len(received) == 1
            clock.advance(timedelta(days=1))
            dispatcher.run_once()
        finally:
            dispatcher.close()
    (_, day_one), (_, day_two) = received
    assert day_one["Subject"] == "Your daily digest (2 notices)"
    assert first.id in _body(day_one) and second.id in _body(day_one)
    assert day_two["Subject"] == "Your daily digest (1 notice)" and third.id in _body(day_two)
    assert forget_contact(engine.cases, CONSUMER) and not forget_contact(engine.cases, CONSUMER)
    assert get_contact(engine.cases, CONSUMER).email is None


def test_the_acknowledgement_cites_the_rulebook_entries_of_the_category_in_plain_language(
    outbox_engine: Callable[..., Engine],
) -> None:
    """Issue #22 (and #21's acknowledgement "with the rules that apply to the category"): the
    consumer is told, in their language, the rulebook entries that apply to the case's category,
    each with its citation and plain-language summary; by e-mail in Chinese, in the inbox in
    English; entries for other categories only are not cited."""
    clock = ManualClock(T0)
    engine = outbox_engine(clock)
    rulebook = load_desk().parts["rulebook"]
    assert isinstance(rulebook, Rulebook)
    engine.cases.rulebook = rulebook  # as runtime/bootstrap.py wires the desk's rulebook
    english = Actor("c-2", "consumer")
    set_contact(
        engine.cases, CONSUMER, email="wang@example.cn", language="zh-CN", email_kinds=["*"], digest=False, now=T0
    )
    set_contact(engine.cases, english, email=None, language="en", email_kinds=[], digest=False, now=T0)
    with smtp_server() as (port, received):
        dispatcher = mailing_dispatcher(engine, port, sender="desk@disputes.example")
        try:
            case = engine.cases.file(actor=CONSUMER, new_case=new_case(category="counterfeit"))
            other = engine.cases.file(
                actor=english, new_case=new_case(category="counterfeit", consumer_id="c-2", order_ref="ORD-2")
            )
            dispatcher.run_once()
        finally:
            dispatcher.close()
    applying = rulebook.for_category("counterfeit")
    assert {"crpl-55", "platform-authenticity"} <= {e.id for e in applying}
    elsewhere = [e for e in rulebook.entries if e not in applying]
    assert elsewhere
    (message,) = [m for rcpts, m in received if list(rcpts) == ["wang@example.cn"]]
    assert message["Subject"] == f"投诉已受理：{case.id}"
    chinese = _body(message)
    for entry in applying:
        assert f"{entry.title['zh-CN']}（{entry.citation}）：{entry.summary['zh-CN']}" in chinese
    assert not any(e.citation in chinese or e.summary["zh-CN"] in chinese for e in elsewhere)
    (notice,) = list_notices(engine.cases, engine.notification_rules(), english)[0]
    assert notice.kind == "acknowledgement" and other.id in notice.subject
    for entry in applying:
        assert f"{entry.title['en']} ({entry.citation}): {entry.summary['en']}" in notice.body
    assert not any(e.citation in notice.body or e.summary["en"] in notice.body for e in elsewhere)
