"""CaseService on a real database: commands, conflicts, the chain and replay."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from audit.chains import verify_case
from audit.replay import replay
from cases.queries import CaseFilters, decode_cursor
from cases.service import CaseService
from cases.sweep import fire_due_timers
from sla.clock import ManualClock
from store.tables import EVENTS
from tests.support.actors import AUDITOR, CONSUMER, MEDIATOR, MERCHANT, SENIOR, T0
from tests.support.builders import make_clocked_service, make_service, new_case
from workflow.errors import ConflictError, InvalidCommandError, NotFoundError, TransitionNotAllowedError
from workflow.model import Actor


@pytest.fixture
def service(db_url: str) -> Iterator[CaseService]:
    svc = make_service(db_url)
    yield svc
    svc.db.dispose()


def test_file_and_move_a_case(service: CaseService) -> None:
    case = service.file(actor=CONSUMER, new_case=new_case())
    assert case.state == "filed" and case.version == 1 and case.id.startswith("DSP-")
    case = service.execute(actor=MEDIATOR, case_id=case.id, name="assign", expected_version=1)
    assert case.state == "assigned" and case.mediator_id == "med-1" and case.version == 2
    case = service.execute(actor=MERCHANT, case_id=case.id, name="respond", data={"statement": "We will check."})
    assert case.merchant_responded
    case = service.execute(actor=MEDIATOR, case_id=case.id, name="start_mediation")
    offer = service.execute(actor=MERCHANT, case_id=case.id, name="propose_offer", data={"amount": 15000})
    offer_id = offer.offers[0].offer_id
    case = service.execute(actor=CONSUMER, case_id=case.id, name="accept_offer", data={"offer_id": offer_id})
    case = service.execute(actor=MEDIATOR, case_id=case.id, name="settle")
    assert case.state == "settled" and case.awarded_amount == 15000 and case.outcome == "settled_by_offer"
    case = service.execute(actor=MEDIATOR, case_id=case.id, name="close")
    assert case.state == "closed" and case.closed_at is not None
    stored = service.get(actor=MEDIATOR, case_id=case.id)
    assert stored == case
    history = service.events(actor=MEDIATOR, case_id=case.id).data
    assert [e.seq for e in history] == list(range(1, case.version + 1))
    assert history[0].type == "filed" and history[-1].data["to"] == "closed"
    with service.db.read() as session:
        assert verify_case(session, service.registry, case.id) == []


def test_impossible_trigger_names_state_and_possible_triggers(service: CaseService) -> None:
    case = service.file(actor=CONSUMER, new_case=new_case())
    with pytest.raises(TransitionNotAllowedError) as caught:
        service.execute(actor=MEDIATOR, case_id=case.id, name="settle")
    assert caught.value.state == "filed" and "assign" in caught.value.possible
    assert service.get(actor=MEDIATOR, case_id=case.id).version == 1


def test_stale_version_is_a_conflict_and_changes_nothing(service: CaseService) -> None:
    case = service.file(actor=CONSUMER, new_case=new_case())
    service.execute(actor=MEDIATOR, case_id=case.id, name="assign", expected_version=1)
    with pytest.raises(ConflictError) as caught:
        service.execute(actor=CONSUMER, case_id=case.id, name="withdraw", expected_version=1)
    assert caught.value.current_version == 2
    assert service.get(actor=MEDIATOR, case_id=case.id).state == "assigned"


def test_invalid_data_is_refused_without_writing(service: CaseService) -> None:
    case = service.file(actor=CONSUMER, new_case=new_case())
    with pytest.raises(InvalidCommandError):
        service.execute(actor=MEDIATOR, case_id=case.id, name="reject", reason="")
    with pytest.raises(NotFoundError):
        service.execute(actor=MEDIATOR, case_id="DSP-NOPE", name="assign")
    with pytest.raises(InvalidCommandError):
        service.file(actor=CONSUMER, new_case=new_case(category="weather"))
    assert service.get(actor=MEDIATOR, case_id=case.id).version == 1


def test_sixteen_threads_one_winner_per_version(service: CaseService) -> None:
    case = service.file(actor=CONSUMER, new_case=new_case())
    service.execute(actor=MEDIATOR, case_id=case.id, name="assign")
    results: list[str] = []
    barrier = threading.Barrier(16)

    def worker(index: int) -> None:
        # Half try to withdraw, half to escalate: conflicting triggers on version 2.
        name = "withdraw" if index % 2 else "escalate"
        actor = CONSUMER if name == "withdraw" else MEDIATOR
        barrier.wait()
        try:
            service.execute(actor=actor, case_id=case.id, name=name, expected_version=2)
            results.append("ok")
        except ConflictError:
            results.append("conflict")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 1 and results.count("conflict") == 15
    final = service.get(actor=MEDIATOR, case_id=case.id)
    assert final.version == 3
    with service.db.read() as session:
        events = EVENTS
        seqs = session.execute(select(events.c.seq).where(events.c.case_id == case.id).order_by(events.c.seq)).all()
        assert [s for (s,) in seqs] == [1, 2, 3]
        assert verify_case(session, service.registry, case.id) == []


def test_replay_at_seq_and_time(db_url: str) -> None:
    clock = ManualClock(T0)
    service = make_service(db_url, clock=clock)
    case = service.file(actor=CONSUMER, new_case=new_case())
    clock.advance(timedelta(hours=1))
    service.execute(actor=MEDIATOR, case_id=case.id, name="assign")
    clock.advance(timedelta(hours=1))
    service.execute(actor=MEDIATOR, case_id=case.id, name="escalate")
    with service.db.read() as session:
        assert replay(session, service.registry, case.id, seq=1).snapshot.state == "filed"
        assert replay(session, service.registry, case.id, seq=2).snapshot.state == "assigned"
        at = replay(session, service.registry, case.id, at=T0 + timedelta(minutes=90))
        assert at.snapshot.state == "assigned" and len(at.events) == 2
        # Replay carries markers; rendered through the one reveal it reads as the service answers.
        replayed = service.reveal(replay(session, service.registry, case.id).snapshot, session=session)
        assert replayed == service.get(actor=SENIOR, case_id=case.id)
    service.db.dispose()


def test_tampering_is_detected_with_case_seq_and_kind(service: CaseService) -> None:
    case = service.file(actor=CONSUMER, new_case=new_case())
    service.execute(actor=MEDIATOR, case_id=case.id, name="assign")
    service.execute(actor=CONSUMER, case_id=case.id, name="comment", data={"body": "Any news?"})
    with service.db.write() as session:
        session.execute(
            # The body holds a marker for the text (privacy/markers.py); the flag beside it is plain.
            text("UPDATE events SET body = replace(body, :plain, :changed) WHERE case_id = :c AND seq = 3"),
            {"c": case.id, "plain": '"internal":false', "changed": '"internal":true'},
        )
    with service.db.read() as session:
        damages = verify_case(session, service.registry, case.id)
    assert [(d.case_id, d.seq, d.kind) for d in damages] == [(case.id, 3, "changed")]


def test_deleted_and_truncated_events_are_detected(service: CaseService) -> None:
    case = service.file(actor=CONSUMER, new_case=new_case())
    for body in ("one", "two", "three"):
        service.execute(actor=CONSUMER, case_id=case.id, name="comment", data={"body": body})
    with service.db.write() as session:
        session.execute(text("DELETE FROM events WHERE case_id = :c AND seq = 2"), {"c": case.id})
    with service.db.read() as session:
        assert [(d.seq, d.kind) for d in verify_case(session, service.registry, case.id)] == [(2, "deleted")]
    with service.db.write() as session:
        session.execute(text("DELETE FROM events WHERE case_id = :c AND seq >= 2"), {"c": case.id})
    with service.db.read() as session:
        assert [(d.seq, d.kind) for d in verify_case(session, service.registry, case.id)] == [(2, "truncated")]


def test_list_filters_and_cursor(service: CaseService) -> None:
    ids = [service.file(actor=CONSUMER, new_case=new_case(order_ref=f"O-{i}")).id for i in range(7)]
    service.execute(actor=MEDIATOR, case_id=ids[0], name="assign")
    page = service.list_cases(actor=MEDIATOR, limit=3)
    seen = [c.id for c in page.data]
    while page.next_cursor:
        page = service.list_cases(actor=MEDIATOR, limit=3, before=decode_cursor(page.next_cursor))
        seen += [c.id for c in page.data]
    assert seen == list(reversed(ids))
    assigned = service.list_cases(actor=MEDIATOR, filters=CaseFilters(state="assigned"))
    assert [c.id for c in assigned.data] == [ids[0]]
    other_consumer = service.list_cases(actor=CONSUMER.__class__("c-2", "consumer"))
    assert other_consumer.data == []


def test_mediator_lists_by_state_and_breaching_cases(db_url: str) -> None:
    """The state filter resolves the mediators' "own or pool" visibility; breaching means a
    clock breached, or warned and still running (the cases' breaching column)."""
    service = make_clocked_service(db_url)
    try:
        _lists_by_state_and_breaching(service)
    finally:
        service.db.dispose()


def _lists_by_state_and_breaching(service: CaseService) -> None:
    other = Actor("med-2", "mediator")
    mine, theirs, pool = (service.file(actor=CONSUMER, new_case=new_case(order_ref=f"O-{i}")).id for i in range(3))
    service.execute(actor=MEDIATOR, case_id=mine, name="assign")
    service.execute(actor=other, case_id=theirs, name="assign")

    def listed(actor: Actor, **filters: object) -> list[str]:
        return [c.id for c in service.list_cases(actor=actor, filters=CaseFilters(**filters)).data]  # type: ignore[arg-type]

    assert listed(MEDIATOR, state="assigned") == [mine]
    assert listed(other, state="assigned") == [theirs]
    assert listed(MEDIATOR, state="filed") == [pool]
    assert listed(MEDIATOR) == [pool, mine]
    assert listed(AUDITOR, breaching=True) == []
    # The pool case's assignment clock (2 business hours) breaches; the assigned cases'
    # merchant-response clocks have not even warned yet.
    service.clock.advance(timedelta(hours=3))  # type: ignore[attr-defined]
    fire_due_timers(service, service.clock.now())
    assert listed(AUDITOR, breaching=True) == [pool]
    assert listed(AUDITOR, breaching=False) == [theirs, mine]


def test_a_filing_whose_new_id_is_taken_draws_another(service: CaseService) -> None:
    # Two filings in one millisecond drawing the same random tail, made certain.
    ids = iter(["DSP-SAME-000001", "DSP-SAME-000001", "DSP-SAME-000002"])
    service.id_factory = lambda now: next(ids)
    first = service.file(actor=CONSUMER, new_case=new_case())
    second = service.file(actor=CONSUMER, new_case=new_case(subject="Another one"))
    assert (first.id, second.id) == ("DSP-SAME-000001", "DSP-SAME-000002")
    assert service.get(actor=CONSUMER, case_id=first.id).subject == new_case().subject
    assert service.get(actor=CONSUMER, case_id=second.id).subject == "Another one"
    with service.db.read() as session:
        assert verify_case(session, service.registry, first.id) == []
        assert verify_case(session, service.registry, second.id) == []


def test_a_filing_gives_up_when_every_id_it_draws_is_taken(service: CaseService) -> None:
    service.id_factory = lambda now: "DSP-SAME-000001"
    service.file(actor=CONSUMER, new_case=new_case())
    with pytest.raises(ConflictError):
        service.file(actor=CONSUMER, new_case=new_case())
    with service.db.read() as session:
        assert session.execute(text("SELECT count(*) FROM cases")).scalar_one() == 1
