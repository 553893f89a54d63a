"""What is sent, on each database: a new public holiday moves the running deadlines of 100 cases
and each affected party gets one notice naming the old and the new deadline; the filing's
acknowledgement, the merchant's new claim, the mediator's assignment, reminders (at the clock's
warning point and before breach), pauses and breaches."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from cases.sweep import fire_due_timers
from desk.loader import load_desk, write_packaged_desk
from outbox.dispatch import DispatchConfig, Dispatcher
from outbox.fanout import fan_out
from outbox.inbox import list_notices, mark_read, unread_count
from runtime.bootstrap import apply_desk
from runtime.engine import Engine
from sla.clock import ManualClock
from store.tables import NOTICES
from tests.support.actors import CONSUMER, MEDIATOR, MERCHANT, T0
from tests.support.builders import new_case
from workflow.model import Actor

CASES = 100


def _run(engine: Engine) -> None:
    dispatcher = Dispatcher(engine.cases, engine.notification_rules, DispatchConfig())
    try:
        dispatcher.run_once()
    finally:
        dispatcher.close()


def test_a_new_holiday_moves_100_deadlines_and_each_party_hears_once(
    outbox_engine: Callable[..., Engine], tmp_path: Path
) -> None:
    clock = ManualClock(T0)  # Monday 2026-03-02 10:00 in Shanghai: the assignment clocks run till 12:00
    engine = outbox_engine(clock)
    cases = []
    for number in range(CASES):
        consumer = Actor(f"c-{number}", "consumer")
        filed = engine.cases.file(
            actor=consumer, new_case=new_case(consumer_id=consumer.id, merchant_id=f"m-{number % 10}")
        )
        cases.append(filed)
    fan_out(engine.db, clock.now())
    old_due = {c.id: c.timer("assignment").due_at for c in cases}  # type: ignore[union-attr]

    desk_dir = tmp_path / "desk"
    write_packaged_desk(desk_dir)
    calendars = desk_dir / "calendars.yaml"
    text = calendars.read_text(encoding="utf-8").replace("extra_days_off: []", 'extra_days_off: ["2026-03-02"]', 1)
    calendars.write_text(text, encoding="utf-8")
    clock.advance(timedelta(minutes=5))
    apply_desk(engine, load_desk(desk_dir))
    fan_out(engine.db, clock.now())

    with engine.db.read() as session:
        rows = session.execute(
            select(NOTICES.c.recipient, NOTICES.c.case_id, NOTICES.c.data).where(NOTICES.c.kind == "deadline_changed")
        ).all()
    per_party = Counter((r.recipient, r.case_id) for r in rows)
    # Consumers are addressed by the pseudonym the log holds (issue #18), never by their user id.
    pseudonym = {n: engine.cases.as_logged(Actor(f"c-{n}", "consumer")).id for n in range(CASES)}
    assert all(p.startswith("sub_") for p in pseudonym.values())
    expected = {(f"consumer:{pseudonym[n]}", c.id) for n, c in enumerate(cases)} | {
        (f"merchant:m-{n % 10}", c.id) for n, c in enumerate(cases)
    }
    assert set(per_party) == expected and set(per_party.values()) == {1}  # one notice per party and case

    consumer = Actor("c-7", "consumer")
    notices, _ = list_notices(engine.cases, engine.notification_rules(), consumer)
    (moved,) = [n for n in notices if n.kind == "deadline_changed"]
    case = engine.cases.get(actor=consumer, case_id=cases[7].id)
    change = moved.data["changes"][0]
    assert change["old_due_at"] == old_due[case.id] and change["new_due_at"] == case.timer("assignment").due_at  # type: ignore[union-attr]
    assert change["new_due_at"] != change["old_due_at"]
    assert "2026-03-02 04:00 UTC" in moved.body and "2026-03-03 03:00 UTC" in moved.body  # was 12:00, now 11:00 CST
    assert "calendar configuration changed" in moved.body


def test_filing_assignment_reminders_and_breach(outbox_engine: Callable[..., Engine]) -> None:
    clock = ManualClock(T0)
    engine = outbox_engine(clock)
    case = engine.cases.file(actor=CONSUMER, new_case=new_case(category="counterfeit"))
    _run(engine)
    (ack,) = list_notices(engine.cases, engine.notification_rules(), CONSUMER)[0]
    assert ack.kind == "acknowledgement" and case.id in ack.body
    assert "counterfeit goods" in ack.body and "Platform rule 4.2" in ack.body and "Article 55" in ack.body
    assert "mediator assignment: 2026-03-02 04:00 UTC" in ack.body  # the clock running now

    engine.cases.execute(actor=MEDIATOR, case_id=case.id, name="assign")
    _run(engine)
    (claim,) = list_notices(engine.cases, engine.notification_rules(), MERCHANT)[0]
    assert claim.kind == "new_claim" and "respond by 2026-03-04 02:00 UTC" in claim.subject  # 48 h
    (assigned,) = list_notices(engine.cases, engine.notification_rules(), MEDIATOR)[0]
    assert assigned.kind == "assigned"

    # The reminder 4 h before the merchant's deadline (the desk's before_breach) and at the warning (75%).
    clock.advance(timedelta(hours=36) + timedelta(minutes=1))
    fire_due_timers(engine.cases, clock.now())
    _run(engine)
    clock.advance(timedelta(hours=8))
    _run(engine)
    reminders = [
        n for n in list_notices(engine.cases, engine.notification_rules(), MERCHANT)[0] if n.kind == "reminder"
    ]
    assert sorted(n.data["when"] for n in reminders) == ["before_breach", "warning"]
    assert all("2026-03-04 02:00 UTC" in n.body for n in reminders)

    clock.advance(timedelta(hours=5))
    fire_due_timers(engine.cases, clock.now())
    _run(engine)
    kinds = [n.kind for n in list_notices(engine.cases, engine.notification_rules(), MEDIATOR)[0]]
    assert "breach" in kinds
    assert unread_count(engine.cases, MEDIATOR) == len(kinds)
    assert mark_read(engine.cases, MEDIATOR, None, clock.now()) == len(kinds)
    assert unread_count(engine.cases, MEDIATOR) == 0


def test_a_pause_and_resume_tell_the_parties(outbox_engine: Callable[..., Engine]) -> None:
    clock = ManualClock(T0)
    engine = outbox_engine(clock)
    case = engine.cases.file(actor=CONSUMER, new_case=new_case())
    engine.cases.execute(actor=MEDIATOR, case_id=case.id, name="assign")
    asked = engine.cases.execute(
        actor=MEDIATOR, case_id=case.id, name="request_info", data={"party": "consumer", "question": "photo?"}
    )
    clock.advance(timedelta(hours=3))
    request_id = asked.info_requests[0].request_id
    engine.cases.execute(
        actor=CONSUMER, case_id=case.id, name="provide_info", data={"request_id": request_id, "answer": "attached"}
    )
    _run(engine)
    mine = list_notices(engine.cases, engine.notification_rules(), CONSUMER)[0]
    assert {n.kind for n in mine} >= {"info_request", "deadline_changed"}
    changes = [c for n in mine if n.kind == "deadline_changed" for c in n.data["changes"]]
    assert [c["kind"] for c in changes] == ["timer_resumed", "timer_paused"]  # newest first
    resumed = changes[0]
    assert resumed["old_due_at"] is not None and resumed["new_due_at"] > resumed["old_due_at"]
