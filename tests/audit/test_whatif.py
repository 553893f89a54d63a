"""What-if replays recorded commands under changed rules and writes nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from audit.chains import verify_case
from audit.whatif import what_if_case
from cases.commands import UnitOfWork
from cases.queries import load_snapshot
from cases.service import CaseService
from cases.sweep import fire_due_timers
from sla.clock import ManualClock
from sla.config import default_calendars
from sla.planner import SlaPlanner
from store.tables import EVENTS
from tests.support.actors import AUDITOR, CONSUMER, MEDIATOR, MERCHANT
from tests.support.builders import (
    default_policies,
    default_policies_and,
    make_clocked_service,
    new_case,
    no_offers_from_flagged_merchants,
    set_merchant_flag,
)
from workflow.decide import decide
from workflow.definition import load_definition_text
from workflow.events import Event
from workflow.model import SYSTEM, Actor, CaseSnapshot, Command

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_WORKFLOW = (ROOT / "workflow" / "definitions" / "consumer_dispute.yaml").read_text(encoding="utf-8")


def test_changed_rules_report_refusals_and_other_destinations(db_url: str, tmp_path: Path) -> None:
    service = make_clocked_service(db_url)
    withdrawn = service.file(actor=CONSUMER, new_case=new_case())
    service.execute(actor=MEDIATOR, case_id=withdrawn.id, name="assign")
    service.execute(actor=CONSUMER, case_id=withdrawn.id, name="withdraw", reason="sorted out")
    conceded = service.file(actor=CONSUMER, new_case=new_case(order_ref="o2"))
    service.execute(actor=MEDIATOR, case_id=conceded.id, name="assign")
    service.execute(actor=MERCHANT, case_id=conceded.id, name="accept_claim")
    untouched = service.file(actor=CONSUMER, new_case=new_case(order_ref="o3"))
    service.execute(actor=CONSUMER, case_id=untouched.id, name="comment", data={"body": "hello"})

    # New workflow: a withdrawal from 'assigned' is no longer possible.
    changed_workflow = load_definition_text(
        DEFAULT_WORKFLOW.replace(
            "  - trigger: withdraw\n    source: [filed, assigned, mediating, escalated]",
            "  - trigger: withdraw\n    source: [filed, mediating, escalated]",
        )
    )
    # New policies: merchants may no longer concede in full.
    changed_policies = default_policies_and(
        tmp_path,
        "guards.cedar",
        '@id("no-full-concessions")\n@reason("full concessions go through a mediator now")\n'
        'forbid (principal, action == Action::"accept_claim", resource is Case);\n',
    )

    with service.db.read() as session:
        before = session.execute(select(func.count()).select_from(EVENTS)).scalar_one()
        one = what_if_case(
            session, service.registry, withdrawn.id, workflow=changed_workflow, authorizer=default_policies()
        )
        two = what_if_case(
            session, service.registry, conceded.id, workflow=service.registry.active(), authorizer=changed_policies
        )
        three = what_if_case(
            session, service.registry, untouched.id, workflow=changed_workflow, authorizer=changed_policies
        )
        same = what_if_case(
            session, service.registry, conceded.id, workflow=service.registry.active(), authorizer=default_policies()
        )
        after = session.execute(select(func.count()).select_from(EVENTS)).scalar_one()
    assert before == after
    assert [(d.command, d.now) for d in one.divergences] == [("withdraw", "refused: not possible in state 'assigned'")]
    assert [d.command for d in two.divergences] == ["accept_claim"]
    assert "full concessions go through a mediator now" in two.divergences[0].now
    assert not three.changed and three.commands == 1
    assert not same.changed and same.commands == 2
    service.db.dispose()


def _timer_what_if(service: CaseService, case_id: str, goal: str) -> list[tuple[str, str, str]]:
    workflow = load_definition_text(DEFAULT_WORKFLOW.replace("    goal: 48h\n", f"    goal: {goal}\n"))
    with service.db.read() as session:
        report = what_if_case(
            session,
            service.registry,
            case_id,
            workflow=workflow,
            authorizer=default_policies(),
            sla=SlaPlanner(default_calendars()),
        )
    return [(d.command, d.recorded, d.now) for d in report.divergences]


def test_simulated_clocks_show_a_changed_goal_and_nothing_else(db_url: str) -> None:
    service = make_clocked_service(db_url)
    clock = service.clock
    assert isinstance(clock, ManualClock)
    silent = service.file(actor=CONSUMER, new_case=new_case(order_ref="silent"))
    service.execute(actor=MEDIATOR, case_id=silent.id, name="assign")
    late = service.file(actor=CONSUMER, new_case=new_case(order_ref="late"))
    service.execute(actor=MEDIATOR, case_id=late.id, name="assign")
    busy = service.file(actor=CONSUMER, new_case=new_case(order_ref="busy"))
    service.execute(actor=MEDIATOR, case_id=busy.id, name="assign")
    asked = service.execute(
        actor=MEDIATOR, case_id=busy.id, name="request_info", data={"party": "consumer", "question": "Photos?"}
    )
    clock.advance(timedelta(hours=10))
    service.execute(
        actor=CONSUMER,
        case_id=busy.id,
        name="provide_info",
        data={"request_id": asked.info_requests[-1].request_id, "answer": "Here."},
    )
    clock.advance(timedelta(hours=20))
    service.execute(actor=MERCHANT, case_id=late.id, name="respond", data={"statement": "Sorry, late."})
    service.execute(actor=MERCHANT, case_id=busy.id, name="respond", data={"statement": "Answer."})
    service.execute(actor=MEDIATOR, case_id=busy.id, name="start_mediation")
    clock.advance(timedelta(hours=18))
    fire_due_timers(service, clock.now())
    clock.advance(timedelta(days=12))  # the busy case's resolution clock runs out: escalated
    fire_due_timers(service, clock.now())
    assert [service.get(actor=AUDITOR, case_id=c.id).state for c in (silent, late, busy)] == [
        "closed",
        "assigned",
        "escalated",
    ]
    # The same rules, clocks simulated: no case goes differently.
    for case in (silent, late, busy):
        assert _timer_what_if(service, case.id, "48h") == []
    # A longer window: the silent merchant's breach would not have happened yet.
    longer = _timer_what_if(service, silent.id, "72h")
    assert longer == [
        (
            "timer merchant_response",
            "breached at 2026-03-04T02:00:00.000000Z",
            "would not breach yet: due 2026-03-05T02:00:00.000000Z under the new rules",
        ),
        ("decide_for_consumer", "-> settled", "would not happen: its clock would not have run out"),
        (
            "timer fulfilment",
            "breached at 2026-03-16T02:00:00.000000Z",
            "would not breach: the fulfilment clock would not be running",
        ),
        # Still open under the new rules, its 72-hour clock would have run out before the
        # recorded closing (whose own clock never started): reported, not invented.
        ("timer merchant_response", "-", "would have breached at 2026-03-05T02:00:00.000000Z, before close"),
        ("close", "-> closed", "would not happen: its clock would not have run out"),
    ]
    # A shorter window: the merchant who answered after 30 hours would have been too late.
    shorter = _timer_what_if(service, late.id, "24h")
    assert shorter == [
        ("timer merchant_response", "-", "would have breached at 2026-03-03T02:00:00.000000Z, before respond")
    ]
    service.db.dispose()


def test_the_merchant_standing_each_decision_recorded_is_the_fact_the_simulation_uses(
    db_url: str, tmp_path: Path
) -> None:
    """The merchant's flag lives on its own log; each decision recorded the standing it saw.
    Offers made while the merchant was flagged are judged again as made by a flagged
    merchant, and those made after the flag was cleared as made by one in good standing."""
    service = make_clocked_service(db_url)
    case = service.file(actor=CONSUMER, new_case=new_case())
    for actor, name in ((MEDIATOR, "assign"), (MERCHANT, "respond"), (MEDIATOR, "start_mediation")):
        service.execute(actor=actor, case_id=case.id, name=name, data={"statement": "ok"} if name == "respond" else {})
    full = {"amount": case.claim_amount}
    set_merchant_flag(service, "m-1", True)
    flagged_offer = service.execute(actor=MERCHANT, case_id=case.id, name="propose_offer", data=full)
    set_merchant_flag(service, "m-1", False)
    later_offer = service.execute(actor=MERCHANT, case_id=case.id, name="propose_offer", data=full)
    assert later_offer.version == flagged_offer.version + 1  # the flag itself wrote nothing to the case

    with service.db.read() as session:
        report = what_if_case(
            session,
            service.registry,
            case.id,
            workflow=service.registry.active(),
            authorizer=no_offers_from_flagged_merchants(tmp_path),
        )
        same = what_if_case(
            session, service.registry, case.id, workflow=service.registry.active(), authorizer=default_policies()
        )
    assert [(d.seq, d.command) for d in report.divergences] == [(flagged_offer.version, "propose_offer")]
    assert "a flagged merchant may not make offers" in report.divergences[0].now
    assert not same.changed and same.commands == 5
    service.db.dispose()


def _as_older_versions_wrote(
    service: CaseService,
    case_id: str,
    actor: Actor,
    event: Event | None = None,
    command: str = "",
    data: dict[str, Any] | None = None,
) -> CaseSnapshot:
    """Append to the case what versions before merchant logs appended: the supervision's
    ``flag_raised`` / ``flag_cleared`` on the case itself, and commands that recorded no standing."""
    with service.db.write() as session:
        before = load_snapshot(session, case_id)
        machine = service.registry.machine(before.workflow_version, session)
        work = UnitOfWork(service, machine.definition, before, case_id, service.clock.now())
        if event is not None:
            work.add([event], actor)
        else:
            work.add(decide(machine, before, Command(command, actor, service.clock.now(), data or {})), actor)
            work.follow_up(command, before)
        return work.write(session)


def test_flags_older_versions_recorded_on_the_case_are_carried_as_recorded(db_url: str, tmp_path: Path) -> None:
    """Histories written before merchant logs existed (the flag as events of the case, decisions
    without a recorded standing) still replay, and what-if still judges them on the flag."""
    service = make_clocked_service(db_url)
    case = service.file(actor=CONSUMER, new_case=new_case())
    for actor, name in ((MEDIATOR, "assign"), (MERCHANT, "respond"), (MEDIATOR, "start_mediation")):
        service.execute(actor=actor, case_id=case.id, name=name, data={"statement": "ok"} if name == "respond" else {})
    full = {"amount": case.claim_amount}
    flag = {"flag": "merchant_flagged", "flag_id": 1}
    _as_older_versions_wrote(service, case.id, SYSTEM, Event("flag_raised", {**flag, "reasons": ["x"]}))
    flagged_offer = _as_older_versions_wrote(service, case.id, MERCHANT, command="propose_offer", data=full)
    assert "merchant_flagged" in flagged_offer.flags
    _as_older_versions_wrote(service, case.id, SYSTEM, Event("flag_cleared", flag))
    _as_older_versions_wrote(service, case.id, MERCHANT, command="propose_offer", data=full)

    with service.db.read() as session:
        assert verify_case(session, service.registry, case.id) == []
        report = what_if_case(
            session,
            service.registry,
            case.id,
            workflow=service.registry.active(),
            authorizer=no_offers_from_flagged_merchants(tmp_path),
        )
        same = what_if_case(
            session, service.registry, case.id, workflow=service.registry.active(), authorizer=default_policies()
        )
    assert [(d.seq, d.command) for d in report.divergences] == [(flagged_offer.version, "propose_offer")]
    assert not same.changed and same.commands == 5
    service.db.dispose()
