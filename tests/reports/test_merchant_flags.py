"""A merchant's supervision flag is recorded once, on the merchant's own log (both backends).

Flagging or clearing a merchant writes a constant number of rows whatever the number of
its open cases, and leaves their versions alone; the policies still see the flag on the
next command, and every decision records the standing of the merchant's log it relied on.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlmodel import Session, SQLModel

from audit.replay import replay
from audit.verify import verify_database
from audit.whatif import what_if_case
from cases.commands import file_case
from cases.merchants import merchant_log, standing_of
from cases.service import CaseService
from cases.sweep import fire_due_timers
from cases.triage import IntakePaths, Triage
from reports.supervision import evaluate_merchants
from sla.clock import ManualClock
from store.tables import CASES
from tests.support.actors import CONSUMER, MEDIATOR, MERCHANT, T0
from tests.support.builders import (
    default_policies,
    make_clocked_service,
    make_service,
    new_case,
    no_offers_from_flagged_merchants,
    set_merchant_flag,
)
from workflow.errors import PolicyDeniedError
from workflow.merchant import MerchantStanding, recorded_standing
from workflow.model import Actor

OPEN_CASES = 1000


def rows_per_table(session: Session) -> Counter[str]:
    """How many rows every table of the schema holds."""
    return Counter(
        {
            table.name: session.execute(select(func.count()).select_from(table)).scalar_one()
            for table in SQLModel.metadata.sorted_tables
        }
    )


def case_versions(session: Session) -> dict[str, tuple[int, str]]:
    return {
        r.id: (r.version, r.head_hash) for r in session.execute(select(CASES.c.id, CASES.c.version, CASES.c.head_hash))
    }


def supervision(tmp_path: Path, name: str, rules: str) -> Triage:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"supervision:\n  period: 30d\n{rules}", encoding="utf-8")
    return Triage.load(IntakePaths(supervision=path), route=False)


def file_many(service: CaseService, count: int, batch: int = 250) -> list[str]:
    """``count`` cases against m-1, filed through the real filing path, ``batch`` per transaction."""
    definition = service.registry.active()
    ids: list[str] = []
    for first in range(0, count, batch):
        with service.db.write() as session:
            for i in range(first, min(count, first + batch)):
                ids.append(
                    file_case(
                        session, service, actor=CONSUMER, new_case=new_case(order_ref=f"ORD-{i}"), definition=definition
                    ).id
                )
    return ids


def test_flagging_a_merchant_with_a_thousand_open_cases_writes_a_constant_number_of_rows(
    db_url: str, tmp_path: Path
) -> None:
    service = make_service(db_url)
    clock = service.clock
    assert isinstance(clock, ManualClock)
    ids = file_many(service, OPEN_CASES)
    case = service.execute(actor=MEDIATOR, case_id=ids[0], name="assign")
    strict = supervision(
        tmp_path, "strict", f"  min_complaints: 1\n  flag_when_any: {{complaints_at_least: {OPEN_CASES}}}\n"
    )
    lenient = supervision(tmp_path, "lenient", "  min_complaints: 1\n  flag_when_any: {complaints_at_least: 100000}\n")

    with service.db.read() as session:
        rows, versions = rows_per_table(session), case_versions(session)
    clock.advance(timedelta(minutes=5))
    raised = evaluate_merchants(service.db, strict.supervision, clock.now())
    assert (raised.raised, raised.merchant_events) == (["m-1"], 1)
    with service.db.read() as session:
        after = rows_per_table(session)
        assert case_versions(session) == versions  # not one open case was written
        assert standing_of(session, "m-1") == MerchantStanding(1, True)
    # One flag record, one event on the merchant's log, one merchant row: nothing else.
    assert after - rows == Counter({"merchant_flags": 1, "merchant_events": 1, "merchants": 1})
    assert rows - after == Counter()

    # The policies see the flag on the next command, and the decision records what it saw.
    with pytest.raises(PolicyDeniedError, match="only offer the full claim"):
        service.execute(actor=MERCHANT, case_id=case.id, name="propose_offer", data={"amount": 100})
    full = service.execute(actor=MERCHANT, case_id=case.id, name="propose_offer", data={"amount": case.claim_amount})
    assert "merchant_flagged" in full.flags and full.version == case.version + 1
    with service.db.read() as session:
        offered = replay(session, service.registry, case.id).events[-1]
    assert offered.type == "offer_proposed"
    assert recorded_standing(offered.data) == MerchantStanding(1, True)

    with service.db.read() as session:
        rows, versions = rows_per_table(session), case_versions(session)
    clock.advance(timedelta(minutes=5))
    cleared = evaluate_merchants(service.db, lenient.supervision, clock.now())
    assert (cleared.cleared, cleared.merchant_events) == (["m-1"], 1)
    with service.db.read() as session:
        after = rows_per_table(session)
        assert case_versions(session) == versions
        assert [e.type for e in merchant_log(session, "m-1")] == ["flag_raised", "flag_cleared"]
    assert after - rows == Counter({"merchant_events": 1}) and rows - after == Counter()
    lower = service.execute(actor=MERCHANT, case_id=case.id, name="propose_offer", data={"amount": 100})
    assert "merchant_flagged" not in lower.flags

    report = verify_database(service.db, service.registry)
    assert report.intact, report.to_dict()
    assert (report.cases_checked, report.merchants_checked, report.merchant_events_checked) == (OPEN_CASES, 1, 2)
    service.db.dispose()


def test_reads_and_lists_show_the_merchants_current_flag(db_url: str) -> None:
    """A case read or listed shows ``merchant_flagged`` exactly while its merchant is flagged,
    whatever its own events say; the stored case row keeps the case's own flags."""
    service = make_service(db_url)
    flagged = service.file(actor=CONSUMER, new_case=new_case())
    other = service.file(actor=CONSUMER, new_case=new_case(merchant_id="m-2", order_ref="o2"))
    set_merchant_flag(service, "m-1", True)
    assert "merchant_flagged" in service.get(actor=MEDIATOR, case_id=flagged.id).flags
    listed = {c.id: c.flags for c in service.list_cases(actor=MEDIATOR).data}
    assert "merchant_flagged" in listed[flagged.id] and "merchant_flagged" not in listed[other.id]
    with service.db.read() as session:
        assert session.execute(select(CASES.c.flags).where(CASES.c.id == flagged.id)).scalar_one() == ""
    set_merchant_flag(service, "m-1", False)
    assert "merchant_flagged" not in service.get(actor=MEDIATOR, case_id=flagged.id).flags
    service.db.dispose()


def test_a_system_decision_on_breach_records_the_standing_it_relied_on(db_url: str) -> None:
    """The merchant stays silent while flagged: the system decides for the consumer when the
    response clock runs out, and that decision names the merchant log's seq it saw."""
    service = make_clocked_service(db_url)
    clock = service.clock
    assert isinstance(clock, ManualClock)
    case = service.file(actor=CONSUMER, new_case=new_case())
    service.execute(actor=MEDIATOR, case_id=case.id, name="assign")
    set_merchant_flag(service, "m-1", True)
    set_merchant_flag(service, "m-1", False)
    set_merchant_flag(service, "m-1", True)
    clock.set(T0 + timedelta(hours=49))
    assert fire_due_timers(service, clock.now()) >= 1
    with service.db.read() as session:
        history = replay(session, service.registry, case.id)
    decided = next(e for e in history.events if e.type == "transitioned" and e.data["trigger"] == "decide_for_consumer")
    assert decided.actor_role == "system"
    assert recorded_standing(decided.data) == MerchantStanding(3, True)
    assert history.snapshot.state == "settled"
    filed = history.events[0]
    assert recorded_standing(filed.data) is None  # filed before the merchant had a log: nothing to record
    service.db.dispose()


# Each example: the merchant's flag toggled (True) or an offer made by the merchant (False),
# the offer for the full claim or below it.
STEPS = st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=8)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_any_interleaving_of_flags_and_offers_is_decided_on_and_replays_with_the_current_flag(
    db_url: str, tmp_path: Path, steps: list[tuple[bool, bool]]
) -> None:
    """Whatever the order of flag changes and offers: an offer below the claim is refused
    exactly while the merchant is flagged; each offer records the merchant log's seq and
    flag at that moment; what-if under the same rules changes nothing, and under rules
    forbidding flagged merchants any offer it names exactly the offers made while flagged."""
    service = make_service(db_url)
    merchant_id = f"m-{uuid.uuid4().hex[:8]}"  # one merchant, one log per example
    merchant = Actor(f"staff-{merchant_id}", "merchant", merchant_id=merchant_id)
    case = service.file(actor=CONSUMER, new_case=new_case(merchant_id=merchant_id))
    service.execute(actor=MEDIATOR, case_id=case.id, name="assign")
    flagged, seq = False, 0
    made_while_flagged: list[int] = []
    for toggle, full in steps:
        if toggle:
            flagged, seq = not flagged, seq + 1
            set_merchant_flag(service, merchant_id, flagged)
            continue
        amount = case.claim_amount if full else case.claim_amount - 1
        try:
            offered = service.execute(actor=merchant, case_id=case.id, name="propose_offer", data={"amount": amount})
        except PolicyDeniedError:
            assert flagged and not full
            continue
        assert full or not flagged
        with service.db.read() as session:
            event = replay(session, service.registry, case.id, seq=offered.version).events[-1]
        assert recorded_standing(event.data) == (MerchantStanding(seq, flagged) if seq else None)
        if flagged:
            made_while_flagged.append(offered.version)

    with service.db.read() as session:
        same = what_if_case(
            session, service.registry, case.id, workflow=service.registry.active(), authorizer=default_policies()
        )
        stricter = what_if_case(
            session,
            service.registry,
            case.id,
            workflow=service.registry.active(),
            authorizer=no_offers_from_flagged_merchants(tmp_path / merchant_id),
        )
    assert not same.changed
    assert [d.seq for d in stricter.divergences] == made_while_flagged
    assert verify_database(service.db, service.registry, case_id=case.id).intact
    service.db.dispose()
