"""SLA clocks on real cases with an injected clock: start, warn, breach, pause, meet."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from audit.chains import verify_case
from cases.service import CaseService
from cases.sweep import fire_due_timers, reschedule_running
from policies.base import AllowAllAuthorizer, Decision
from sla.clock import ManualClock
from sla.config import load_calendars_text
from tests.support.actors import AUDITOR, CONSUMER, MEDIATOR, MERCHANT, T0
from tests.support.builders import make_clocked_service, new_case
from workflow.model import Actor, CaseSnapshot, from_iso

HOUR = timedelta(hours=1)


@pytest.fixture
def service(db_url: str) -> Iterator[CaseService]:
    svc = make_clocked_service(db_url)
    yield svc
    svc.db.dispose()


def clock(service: CaseService) -> ManualClock:
    assert isinstance(service.clock, ManualClock)
    return service.clock


def timer(service: CaseService, case_id: str, name: str) -> Any:
    found = service.get(actor=AUDITOR, case_id=case_id).timer(name)
    assert found is not None, name
    return found


def types(service: CaseService, case_id: str) -> list[str]:
    return [e.type for e in service.events(actor=AUDITOR, case_id=case_id, limit=200).data]


def intact(service: CaseService, case_id: str) -> None:
    with service.db.read() as session:
        assert verify_case(session, service.registry, case_id) == []


def test_assignment_clock_breaches_into_escalation(service: CaseService) -> None:
    case = service.file(actor=CONSUMER, new_case=new_case())
    assignment = timer(service, case.id, "assignment")
    # Monday 10:00 in Shanghai + 2 business hours = 12:00 local = 04:00Z.
    assert from_iso(assignment.due_at) == T0 + 2 * HOUR
    clock(service).set(T0 + 2 * HOUR - timedelta(seconds=1))
    assert fire_due_timers(service, clock(service).now()) == 1  # the warning at 75%, not yet the breach
    assert types(service, case.id)[-1] == "timer_warned"
    clock(service).set(T0 + 2 * HOUR)
    assert fire_due_timers(service, clock(service).now()) == 1
    after = service.get(actor=AUDITOR, case_id=case.id)
    assert after.state == "escalated"
    assert timer(service, case.id, "assignment").status == "breached"
    assert timer(service, case.id, "ruling").status == "running"
    assert types(service, case.id)[-3:] == ["timer_breached", "transitioned", "timer_started"]
    assert fire_due_timers(service, clock(service).now() + HOUR) == 0  # exactly once
    intact(service, case.id)


def test_silent_merchant_warns_at_75_percent_then_case_is_decided_for_consumer(service: CaseService) -> None:
    case = service.file(actor=CONSUMER, new_case=new_case())
    service.execute(actor=MEDIATOR, case_id=case.id, name="assign")
    assert timer(service, case.id, "assignment").status == "met"
    response = timer(service, case.id, "merchant_response")
    assert from_iso(response.due_at) == T0 + 48 * HOUR and from_iso(response.warn_at) == T0 + 36 * HOUR
    clock(service).set(T0 + 36 * HOUR)
    assert fire_due_timers(service, clock(service).now()) == 1
    assert timer(service, case.id, "merchant_response").warned
    assert types(service, case.id)[-1] == "timer_warned"
    clock(service).set(T0 + 48 * HOUR)
    assert fire_due_timers(service, clock(service).now()) == 1
    decided = service.get(actor=MEDIATOR, case_id=case.id)
    assert decided.state == "settled" and decided.outcome == "for_consumer" and decided.awarded_amount == 29900
    events = service.events(actor=MEDIATOR, case_id=case.id, limit=200).data
    transition = [e for e in events if e.type == "transitioned"][-1]
    assert transition.actor_role == "system" and transition.data["trigger"] == "decide_for_consumer"
    # The fulfilment clock (7 days, wall clock) then closes the case.
    fulfilment = timer(service, case.id, "fulfilment")
    clock(service).set(from_iso(fulfilment.due_at))
    assert fire_due_timers(service, clock(service).now()) == 1
    assert service.get(actor=MEDIATOR, case_id=case.id).state == "closed"
    intact(service, case.id)


def test_merchant_response_is_met_by_respond(service: CaseService) -> None:
    case = service.file(actor=CONSUMER, new_case=new_case())
    service.execute(actor=MEDIATOR, case_id=case.id, name="assign")
    service.execute(actor=MERCHANT, case_id=case.id, name="respond", data={"statement": "We refund."})
    assert timer(service, case.id, "merchant_response").status == "met"
    clock(service).set(T0 + 100 * HOUR)
    assert fire_due_timers(service, clock(service).now()) == 0
    assert service.get(actor=MEDIATOR, case_id=case.id).state == "assigned"


def mediating_case(service: CaseService) -> CaseSnapshot:
    case = service.file(actor=CONSUMER, new_case=new_case())
    service.execute(actor=MEDIATOR, case_id=case.id, name="assign")
    service.execute(actor=MERCHANT, case_id=case.id, name="respond", data={"statement": "Let us talk."})
    return service.execute(actor=MEDIATOR, case_id=case.id, name="start_mediation")


def test_mediation_over_seven_business_days_escalates_with_warning_at_80_percent(service: CaseService) -> None:
    case = mediating_case(service)
    resolution = timer(service, case.id, "resolution")
    # Mon 2026-03-02 10:00 + 7 business days of 9 h = Wed 2026-03-11 10:00 local.
    assert from_iso(resolution.due_at) == T0 + timedelta(days=9)
    warn = from_iso(resolution.warn_at)
    clock(service).set(warn)
    assert fire_due_timers(service, warn) == 1 and timer(service, case.id, "resolution").warned
    clock(service).set(from_iso(resolution.due_at))
    assert fire_due_timers(service, clock(service).now()) == 1
    assert service.get(actor=AUDITOR, case_id=case.id).state == "escalated"
    intact(service, case.id)


def test_pause_excludes_the_paused_business_time(service: CaseService) -> None:
    case = mediating_case(service)
    original_due = from_iso(timer(service, case.id, "resolution").due_at)
    service.execute(
        actor=MEDIATOR,
        case_id=case.id,
        name="request_info",
        data={"party": "consumer", "question": "Photos of the label, please."},
    )
    paused = timer(service, case.id, "resolution")
    assert paused.status == "paused"
    clock(service).set(T0 + 24 * HOUR)  # Tuesday 10:00 local: one business day (9 h) passed
    assert fire_due_timers(service, T0 + timedelta(days=30)) == 0  # paused clocks never fire
    request_id = service.get(actor=CONSUMER, case_id=case.id).info_requests[-1].request_id
    service.execute(
        actor=CONSUMER, case_id=case.id, name="provide_info", data={"request_id": request_id, "answer": "Attached."}
    )
    resumed = timer(service, case.id, "resolution")
    assert resumed.status == "running" and resumed.paused_seconds == 9 * 3600
    assert from_iso(resumed.due_at) == original_due + 24 * HOUR
    intact(service, case.id)


def test_ruling_breach_is_flagged(service: CaseService) -> None:
    case = service.file(actor=CONSUMER, new_case=new_case())
    service.execute(actor=MEDIATOR, case_id=case.id, name="assign")
    service.execute(actor=MEDIATOR, case_id=case.id, name="escalate")
    ruling = timer(service, case.id, "ruling")
    clock(service).set(from_iso(ruling.due_at))
    assert fire_due_timers(service, clock(service).now()) == 1
    after = service.get(actor=AUDITOR, case_id=case.id)
    assert after.state == "escalated" and "ruling_overdue" in after.flags


class DenySystem(AllowAllAuthorizer):
    """Allows people, refuses the system: to show a refused breach trigger is not lost."""

    version = "deny-system"

    def decide(
        self, *, actor: Actor, action: str, case: CaseSnapshot, now: datetime, payload: Mapping[str, Any] | None = None
    ) -> Decision:
        if actor.role == "system":
            return Decision(action, False, ("the system may not do this here",), ("deny-system",))
        return super().decide(actor=actor, action=action, case=case, now=now, payload=payload)

    def decide_many(
        self,
        *,
        actor: Actor,
        actions: Sequence[str],
        case: CaseSnapshot,
        now: datetime,
        payloads: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> list[Decision]:
        return [self.decide(actor=actor, action=a, case=case, now=now) for a in actions]


def test_refused_breach_trigger_is_recorded_and_flagged(db_url: str) -> None:
    service = make_clocked_service(db_url, authorizer=DenySystem())
    case = service.file(actor=CONSUMER, new_case=new_case())
    clock(service).set(T0 + 3 * HOUR)
    assert fire_due_timers(service, clock(service).now()) == 1
    after = service.get(actor=MEDIATOR, case_id=case.id)
    assert after.state == "filed"
    assert "assignment_breach_unactioned" in after.flags
    assert timer(service, case.id, "assignment").status == "breached"
    assert fire_due_timers(service, clock(service).now() + HOUR) == 0
    service.db.dispose()


def test_catch_up_after_downtime_fires_each_once(service: CaseService) -> None:
    ids = [service.file(actor=CONSUMER, new_case=new_case(order_ref=f"o{i}")).id for i in range(12)]
    for case_id in ids[:6]:
        service.execute(actor=MEDIATOR, case_id=case_id, name="assign")
    downtime_end = T0 + timedelta(days=3)
    clock(service).set(downtime_end)
    fired = fire_due_timers(service, downtime_end, batch=5)
    assert fired == 12
    assert fire_due_timers(service, downtime_end) == 0
    states = {service.get(actor=AUDITOR, case_id=c).state for c in ids[6:]}
    assert states == {"escalated"}
    assert {service.get(actor=AUDITOR, case_id=c).state for c in ids[:6]} == {"settled"}


def test_calendar_change_moves_running_deadlines(service: CaseService) -> None:
    case = mediating_case(service)
    before = from_iso(timer(service, case.id, "resolution").due_at)
    # The operator declares Thursday 2026-03-05 a day off (a holiday extension).
    text = (
        "calendars:\n  default:\n    timezone: Asia/Shanghai\n"
        "    hours: {mon: ['09:00-18:00'], tue: ['09:00-18:00'], wed: ['09:00-18:00'], thu: ['09:00-18:00'],"
        " fri: ['09:00-18:00']}\n"
        "    holidays: {country: CN}\n    extra_days_off: [2026-03-05]\n"
    )
    assert service.sla is not None
    service.sla.calendars = load_calendars_text(text)
    assert reschedule_running(service, clock(service).now(), "extra day off 2026-03-05") == 1
    after = timer(service, case.id, "resolution")
    assert from_iso(after.due_at) == before + 24 * HOUR
    assert types(service, case.id)[-1] == "timer_rescheduled"
    intact(service, case.id)
