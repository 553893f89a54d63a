"""Webhooks end to end on each database: a command's events reach a real receiver on 127.0.0.1,
signed as Standard Webhooks (verified by the independent ``standardwebhooks`` package), in seq
order per (endpoint, case); retries, 410, 429 with Retry-After, the last retry, and re-sending."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from functools import partial

import pytest
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from outbox import endpoints
from outbox.dispatch import DispatchConfig, Dispatcher
from outbox.inbox import list_notices, unread_count
from outbox.status import list_failed, outbox_status, resend
from runtime.engine import Engine
from sla.clock import ManualClock
from store.tables import DELIVERY_ATTEMPTS, OUTBOX
from tests.support.actors import ADMIN, CONSUMER, MEDIATOR, MERCHANT, OTHER_MERCHANT, T0
from tests.support.builders import new_case
from tests.support.receivers import Behaviour, WebhookReceiver, webhook_receiver
from workflow.errors import InvalidCommandError, NotFoundError, PolicyDeniedError
from workflow.model import Actor


def _dispatcher(engine: Engine, schedule: tuple[float, ...] = (0, 5, 300, 1800)) -> Dispatcher:
    return Dispatcher(engine.cases, engine.notification_rules, DispatchConfig(timeout_seconds=1.0, schedule=schedule))


def _register(engine: Engine, url: str, actor: Actor = ADMIN, **kw: object) -> tuple[str, str]:
    endpoint, secret = endpoints.register(engine.db, actor, url=url, now=engine.clock.now(), development=True, **kw)  # type: ignore[arg-type]
    return endpoint.id, secret


def _story(engine: Engine) -> str:
    cases = engine.cases
    case = cases.file(actor=CONSUMER, new_case=new_case())
    cases.execute(actor=MEDIATOR, case_id=case.id, name="assign")
    cases.execute(actor=MERCHANT, case_id=case.id, name="comment", data={"body": "we will look"})
    return case.id


def test_events_arrive_signed_in_order_and_verify(outbox_engine: Callable[..., Engine]) -> None:
    engine = outbox_engine()
    with webhook_receiver() as receiver:
        _, secret = _register(engine, receiver.url)
        case_id = _story(engine)
        dispatcher = _dispatcher(engine)
        try:
            assert dispatcher.run_once() >= 1
            # One in flight per (endpoint, case): each pass sends the line's head, so a few passes.
            for _ in range(20):
                if not dispatcher.run_once():
                    break
        finally:
            dispatcher.close()
        events = engine.cases.events(actor=MEDIATOR, case_id=case_id).data
        got = receiver.delivered()
        assert [r.message_id for r in got] == [f"evt_{case_id}_{e.seq}" for e in events]
        verifier = Webhook(secret)
        for record in got:
            payload = verifier.verify(record.body, record.headers)
            assert payload["data"]["case_id"] == case_id
        # Personal texts never travel in a webhook: the receiver reads the case through the API.
        assert all(b"The kettle" not in r.body and "电水壶".encode() not in r.body for r in got)
        first = json.loads(got[0].body)
        assert first["type"] == "case.filed" and first["data"]["seq"] == 1


def test_outbox_row_is_written_in_the_commands_transaction(outbox_engine: Callable[..., Engine]) -> None:
    engine = outbox_engine()
    case = engine.cases.file(actor=CONSUMER, new_case=new_case())
    with engine.db.read() as session:
        rows = session.execute(select(OUTBOX.c.case_id, OUTBOX.c.first_seq, OUTBOX.c.last_seq)).all()
    assert [(r.case_id, r.first_seq, r.last_seq) for r in rows] == [(case.id, 1, case.version)]
    # A refused command writes no event, so no outbox row either.
    with pytest.raises(PolicyDeniedError):
        engine.cases.execute(actor=CONSUMER, case_id=case.id, name="assign", data={"mediator_id": "med-1"})
    with engine.db.read() as session:
        assert session.execute(select(func.count()).select_from(OUTBOX)).scalar_one() == 1


def test_retries_410_and_the_last_retry(outbox_engine: Callable[..., Engine]) -> None:
    clock = ManualClock(T0)
    engine = outbox_engine(clock)
    script = [(500, {}), (429, {"Retry-After": "600"}), (200, {})]
    with webhook_receiver(Behaviour(script=script)) as receiver:
        _register(engine, receiver.url, event_types=["case.filed"])
        engine.cases.file(actor=CONSUMER, new_case=new_case())
        dispatcher = _dispatcher(engine)
        try:
            dispatcher.run_once()  # 500: the schedule tries again 5 s later (up to 10% jitter)
            assert [r.answered for r in receiver.received] == [500]
            clock.advance(timedelta(seconds=6))
            dispatcher.run_once()  # 429 and Retry-After: 600 s, longer than the schedule's 5 min
            assert [r.answered for r in receiver.received] == [500, 429]
            clock.advance(timedelta(seconds=400))
            assert dispatcher.run_once() == 0
            clock.advance(timedelta(seconds=201))
            assert dispatcher.run_once() == 1
        finally:
            dispatcher.close()
        assert [r.answered for r in receiver.received] == [500, 429, 200]
        assert len({r.message_id for r in receiver.received}) == 1  # one webhook-id on every attempt
    with engine.db.read() as session:
        assert session.execute(select(func.count()).select_from(DELIVERY_ATTEMPTS)).scalar_one() == 3

    with webhook_receiver(Behaviour(script=[(410, {})])) as gone:
        endpoint_id, _ = _register(engine, gone.url, event_types=["case.filed"])
        engine.cases.file(actor=CONSUMER, new_case=new_case())
        dispatcher = _dispatcher(engine)
        try:
            dispatcher.run_once()
        finally:
            dispatcher.close()
        assert not endpoints.get(engine.db, ADMIN, endpoint_id).enabled
        assert unread_count(engine.cases, ADMIN) == 1  # its owner is told


def test_after_the_last_retry_the_endpoint_is_disabled_and_failures_can_be_resent(
    outbox_engine: Callable[..., Engine],
) -> None:
    clock = ManualClock(T0)
    engine = outbox_engine(clock)
    with webhook_receiver(Behaviour(script=[(500, {})] * 3)) as receiver:
        endpoint_id, _ = _register(engine, receiver.url, actor=MERCHANT, event_types=["case.filed"])
        engine.cases.file(actor=CONSUMER, new_case=new_case())
        engine.cases.file(actor=CONSUMER, new_case=new_case(merchant_id="m-2"))  # not this merchant's
        dispatcher = _dispatcher(engine, schedule=(0, 5, 10))
        try:
            dispatcher.run_once()
            clock.advance(timedelta(seconds=6))
            dispatcher.run_once()
            clock.advance(timedelta(seconds=12))
            dispatcher.run_once()
            endpoint = endpoints.get(engine.db, MERCHANT, endpoint_id)
            assert not endpoint.enabled and "last retry" in endpoint.disabled_reason
            failed = list_failed(engine.db, MERCHANT, endpoint_id)
            assert len(failed) == 1 and failed[0].attempts == 3 and failed[0].last_status == 500
            notices, _ = list_notices(engine.cases, engine.notification_rules(), Actor(MERCHANT.id, "merchant", "m-1"))
            assert [n.kind for n in notices if n.kind == "endpoint_disabled"] == ["endpoint_disabled"]
            with pytest.raises(NotFoundError):
                list_failed(engine.db, OTHER_MERCHANT, endpoint_id)
            assert resend(engine.db, MERCHANT, endpoint_id, clock.now()) == 1
            assert dispatcher.run_once() == 1
        finally:
            dispatcher.close()
        assert [r.answered for r in receiver.received] == [500, 500, 500, 200]
        assert all(json.loads(r.body)["data"]["merchant_id"] == "m-1" for r in receiver.received)
        status = outbox_status(engine.db, clock.now())
        counts = {e.endpoint_id: e for e in status.endpoints}[endpoint_id]
        assert (counts.attempts, counts.failures, counts.failed, counts.enabled) == (4, 3, 0, True)


def test_endpoint_rules(outbox_engine: Callable[..., Engine]) -> None:
    engine = outbox_engine()
    with pytest.raises(PolicyDeniedError):
        _register(engine, "https://example.com/hook", actor=CONSUMER)
    with pytest.raises(PolicyDeniedError):
        _register(engine, "https://example.com/hook", actor=MERCHANT, merchant_id="m-2")
    endpoint_id, _ = _register(engine, "https://example.com/hook", actor=MERCHANT)
    assert endpoints.get(engine.db, MERCHANT, endpoint_id).merchant_id == "m-1"
    with pytest.raises(NotFoundError):
        endpoints.get(engine.db, OTHER_MERCHANT, endpoint_id)
    assert [e.id for e in endpoints.list_endpoints(engine.db, ADMIN)] == [endpoint_id]
    assert endpoints.list_endpoints(engine.db, OTHER_MERCHANT) == []


def _resolves_to(address: str, host: str) -> list[str]:
    return [address]


def test_urls_outside_development() -> None:
    def public(host: str) -> list[str]:
        return ["93.184.216.34"]  # what a public host resolves to

    assert endpoints.check_url("https://hooks.example.com/x", development=False, resolver=public)
    with pytest.raises(InvalidCommandError, match="https"):
        endpoints.check_url("http://hooks.example.com/x", development=False, resolver=public)
    for address in ("127.0.0.1", "10.1.2.3", "192.168.0.9", "169.254.169.254", "::1", "fe80::1"):
        with pytest.raises(InvalidCommandError, match="private, loopback or link-local"):
            endpoints.check_url("https://inside.example/x", development=False, resolver=partial(_resolves_to, address))
    # The real resolver: localhost resolves to loopback.
    with pytest.raises(InvalidCommandError):
        endpoints.check_url("https://localhost/x", development=False)
    assert endpoints.check_url("http://127.0.0.1:9/x", development=True) == "http://127.0.0.1:9/x"
    with pytest.raises(InvalidCommandError):
        endpoints.check_url("ftp://example.com/x", development=True)


def test_secret_rotation_signs_with_both_secrets(outbox_engine: Callable[..., Engine]) -> None:
    engine = outbox_engine()
    with webhook_receiver() as receiver:
        endpoint_id, old = _register(engine, receiver.url, event_types=["case.filed"])
        new = endpoints.rotate_secret(engine.db, ADMIN, endpoint_id, engine.clock.now())
        engine.cases.file(actor=CONSUMER, new_case=new_case())
        dispatcher = _dispatcher(engine)
        try:
            dispatcher.run_once()
        finally:
            dispatcher.close()
        (record,) = receiver.delivered()
        assert len(record.headers["webhook-signature"].split()) == 2
        Webhook(old).verify(record.body, record.headers)
        Webhook(new).verify(record.body, record.headers)


def test_receiver_helper_records_faults() -> None:
    receiver = WebhookReceiver(Behaviour(fail_rate=0.0)).start()
    receiver.stop()
