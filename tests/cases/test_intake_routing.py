"""Intake on the case log (both backends): classification recorded on the filed event, priority
from the rules, routing as system through the policies, waiting and re-routing at the warning."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlmodel import SQLModel

from audit.chains import verify_case
from cases.mediators import MediatorExistsError, add_mediator, list_mediators, update_mediator
from cases.service import CaseService
from cases.sweep import fire_due_timers
from cases.triage import Triage, route_waiting
from policies.cedar import DEFAULT_POLICY_DIR, load_policy_dir
from sla.clock import ManualClock
from store.db import make_engine
from store.tables import MEDIATORS
from tests.support.actors import AUDITOR, CONSUMER, MEDIATOR, T0
from tests.support.builders import make_clocked_service, new_case
from workflow.errors import InvalidCommandError, NotFoundError
from workflow.model import Actor

H = timedelta(hours=1)
INTAKE = Triage.load()
CALENDARS = ("default", "24x7")


@pytest.fixture
def service(db_url: str) -> Iterator[CaseService]:
    svc = make_clocked_service(db_url, mediators=())
    svc.triage = INTAKE
    yield svc
    svc.db.dispose()


def mediator(service: CaseService, ident: str, **fields: Any) -> None:
    values: dict[str, Any] = {"display_name": ident, "categories": ["*"], "languages": ["*"], "capacity": 10}
    values.update(fields)
    with service.db.write() as session:
        add_mediator(session, mediator_id=ident, fields=values, calendars=CALENDARS, now=service.clock.now())


def events(service: CaseService, case_id: str) -> list[Any]:
    return list(service.events(actor=AUDITOR, case_id=case_id, limit=200).data)


def intact(service: CaseService, case_id: str) -> None:
    with service.db.read() as session:
        assert verify_case(session, service.registry, case_id) == []


def clock(service: CaseService) -> ManualClock:
    assert isinstance(service.clock, ManualClock)
    return service.clock


def test_a_complaint_without_category_is_classified_with_its_evidence_on_the_event(service: CaseService) -> None:
    case = service.file(
        actor=CONSUMER, new_case=new_case(category="", subject="收到的耳机是假货", description="官网查询序列号无效。")
    )
    assert case.category == "counterfeit"
    filed = events(service, case.id)[0]
    classification = filed.data["classification"]
    assert classification["category"] == "counterfeit" and classification["language"] == "zh"
    terms = {e["term"] for e in classification["rule_evidence"]["matches"]}
    assert "假货" in terms
    assert classification["rules_version"] == INTAKE.classifier.rules.version
    # The counterfeit rule raised the priority, and says so.
    assert case.priority == "high" and filed.data["priority_rules"]["rules"] == ["counterfeit-goods"]
    intact(service, case.id)


def test_a_given_category_is_kept_and_not_classified(service: CaseService) -> None:
    case = service.file(actor=CONSUMER, new_case=new_case(category="other", subject="假货"))
    assert case.category == "other" and "classification" not in events(service, case.id)[0].data


def test_without_an_intake_a_category_is_required(db_url: str) -> None:
    plain = make_clocked_service(db_url, mediators=())
    with pytest.raises(InvalidCommandError, match="category is required"):
        plain.file(actor=CONSUMER, new_case=new_case(category=""))
    plain.db.dispose()


def test_priority_from_amount_repeats_and_vulnerability(service: CaseService) -> None:
    assert service.file(actor=CONSUMER, new_case=new_case(claim_amount=600000)).priority == "high"
    vulnerable = service.file(actor=CONSUMER, new_case=new_case(vulnerable_consumer=True))
    assert vulnerable.priority == "urgent" and vulnerable.flags == ("vulnerable_consumer",)
    for index in range(3):
        assert service.file(actor=CONSUMER, new_case=new_case(order_ref=f"r{index}")).priority == "normal"
    # Five earlier complaints against m-1 within 30 days: the repeat-offender rule.
    repeat = service.file(actor=CONSUMER, new_case=new_case(order_ref="r5"))
    assert repeat.priority == "high"
    assert events(service, repeat.id)[0].data["priority_rules"] == {
        "level": "high",
        "rules": ["repeat-offender"],
        "repeat_complaints": 5,
    }
    clock(service).set(T0 + timedelta(days=31))
    assert service.file(actor=CONSUMER, new_case=new_case(order_ref="later")).priority == "normal"


def test_filing_routes_to_the_least_loaded_mediator_as_system(service: CaseService) -> None:
    mediator(service, "med-a")
    mediator(service, "med-b")
    first = service.file(actor=CONSUMER, new_case=new_case())
    assert first.state == "assigned" and first.mediator_id == "med-a"  # tie, never assigned: smaller id
    clock(service).set(T0 + timedelta(minutes=1))
    second = service.file(actor=CONSUMER, new_case=new_case(order_ref="2"))
    assert second.mediator_id == "med-b"  # least load
    assign = next(e for e in events(service, second.id) if e.type == "transitioned")
    assert (assign.actor_id, assign.actor_role, assign.data["mediator_id"]) == ("system", "system", "med-b")
    assert "least open load (0 of 10)" in assign.data["reason"]
    assert second.timer("assignment").status == "met"  # type: ignore[union-attr]
    with service.db.read() as session:
        loads = {m.id: (m.open_load, m.last_assigned_at) for m in list_mediators(session)}
    assert loads == {"med-a": (1, T0), "med-b": (1, T0 + timedelta(minutes=1))}
    intact(service, second.id)


def test_skills_languages_and_weights_decide(service: CaseService) -> None:
    mediator(service, "zh-counterfeit", categories=["counterfeit"], languages=["zh"], capacity=4)
    mediator(service, "en-any", languages=["en"], capacity=4)
    zh = service.file(actor=CONSUMER, new_case=new_case(category="", subject="假货", description="序列号查不到"))
    assert zh.mediator_id == "zh-counterfeit"
    en = service.file(actor=CONSUMER, new_case=new_case(category="", subject="Fake watch", description="A replica"))
    assert en.mediator_id == "en-any"
    nobody = service.file(actor=CONSUMER, new_case=new_case(category="", subject="电水壶坏了", description="不加热"))
    assert nobody.state == "filed" and nobody.mediator_id is None  # zh quality: nobody has the skills
    with service.db.read() as session:
        loads = {m.id: m.open_load for m in list_mediators(session, weight=INTAKE.priority.weight)}
    assert loads == {"zh-counterfeit": 2, "en-any": 2}  # counterfeit cases are high priority: weight 2


def test_capacity_is_never_exceeded_and_the_rest_wait(service: CaseService) -> None:
    mediator(service, "med-a", capacity=2)
    mediator(service, "med-b", capacity=2)
    cases = [service.file(actor=CONSUMER, new_case=new_case(order_ref=f"o{i}")) for i in range(4)]
    # The fifth complaint makes m-1 a repeat offender: high priority weighs 2 and fits nowhere.
    cases += [service.file(actor=CONSUMER, new_case=new_case(order_ref=f"o{i}")) for i in range(4, 7)]
    assigned = [c.mediator_id for c in cases]
    assert sorted(m for m in assigned if m) == ["med-a", "med-a", "med-b", "med-b"]
    assert [c.state for c in cases[4:]] == ["filed"] * 3
    with service.db.read() as session:
        assert all(m.open_load <= m.capacity for m in list_mediators(session, weight=INTAKE.priority.weight))


def test_an_off_duty_case_waits_and_the_assignment_warning_routes_it(service: CaseService) -> None:
    mediator(service, "med-a")  # on the default calendar: Mon-Fri 09:00-18:00 Shanghai
    night = T0 + 12 * H  # Monday 22:00 in Shanghai
    clock(service).set(night)
    case = service.file(actor=CONSUMER, new_case=new_case())
    assert case.state == "filed" and case.mediator_id is None
    timer = case.timer("assignment")
    assert timer is not None and timer.warn_at is not None
    # Two business hours from Tuesday 09:00; the warning at 75% is Tuesday 10:30.
    warn = T0 + 24 * H + 30 * timedelta(minutes=1)  # T0 is Monday 10:00 Shanghai
    assert timer.warn_at == "2026-03-03T02:30:00.000000Z" and timer.due_at == "2026-03-03T03:00:00.000000Z"
    clock(service).set(warn)
    assert fire_due_timers(service, warn) == 1
    after = service.get(actor=AUDITOR, case_id=case.id)
    assert after.state == "assigned" and after.mediator_id == "med-a"
    types = [e.type for e in events(service, case.id)]
    assert types == ["filed", "timer_started", "timer_warned", "transitioned", "timer_met", "timer_started"]
    assert (
        "assignment clock warning"
        in next(e for e in events(service, case.id) if e.type == "transitioned").data["reason"]
    )
    intact(service, case.id)


def test_with_nobody_eligible_the_breach_escalates(service: CaseService) -> None:
    case = service.file(actor=CONSUMER, new_case=new_case())
    clock(service).set(T0 + 90 * timedelta(minutes=1))
    assert fire_due_timers(service, clock(service).now()) == 1  # the warning: nobody to route to
    assert service.get(actor=AUDITOR, case_id=case.id).state == "filed"
    clock(service).set(T0 + 2 * H)
    assert fire_due_timers(service, clock(service).now()) == 1
    assert service.get(actor=AUDITOR, case_id=case.id).state == "escalated"
    intact(service, case.id)


def test_a_policy_refusing_the_router_leaves_the_case_waiting(db_url: str, tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, policies)
    (policies / "no_router.cedar").write_text(
        '@id("no-router")\n@reason("this desk assigns by hand")\n'
        'forbid (principal, action == Action::"assign", resource is Case) when { principal.role == "system" };\n'
    )
    svc = make_clocked_service(db_url, authorizer=load_policy_dir(policies), mediators=())
    svc.triage = INTAKE
    mediator(svc, "med-a")
    case = svc.file(actor=CONSUMER, new_case=new_case())
    assert case.state == "filed" and case.mediator_id is None and case.version == 2  # filed + its clock
    with svc.db.read() as session:
        row = session.execute(select(MEDIATORS.c.last_assigned_at).where(MEDIATORS.c.id == "med-a")).one()
    assert row.last_assigned_at is None  # the savepoint undid the router's bookkeeping too
    # A person may still assign it (to a registered mediator).
    assigned = svc.execute(actor=MEDIATOR, case_id=case.id, name="assign", data={"mediator_id": "med-a"})
    assert assigned.mediator_id == "med-a"
    svc.db.dispose()


def test_waiting_cases_are_routed_on_request(service: CaseService) -> None:
    waiting = [service.file(actor=CONSUMER, new_case=new_case(order_ref=f"w{i}")) for i in range(3)]
    assert all(c.mediator_id is None for c in waiting)
    mediator(service, "med-a", capacity=2)
    assert route_waiting(service, INTAKE) == 2
    states = [service.get(actor=AUDITOR, case_id=c.id).state for c in waiting]
    assert sorted(states) == ["assigned", "assigned", "filed"]


def test_mediator_management_validates(service: CaseService) -> None:
    mediator(service, "med-a")
    with pytest.raises(MediatorExistsError):
        mediator(service, "med-a")
    bad: list[dict[str, Any]] = [
        {"categories": ["shoes"]},
        {"languages": ["fr"]},
        {"capacity": -1},
        {"capacity": True},
        {"calendar": "mars"},
        {"active": "yes"},
        {"display_name": ""},
        {"colour": "red"},
    ]
    for change in bad:
        with pytest.raises(InvalidCommandError), service.db.write() as session:
            update_mediator(session, mediator_id="med-a", fields=change, calendars=CALENDARS, now=T0)
    with pytest.raises(NotFoundError), service.db.write() as session:
        update_mediator(session, mediator_id="nobody", fields={"capacity": 3}, calendars=CALENDARS, now=T0)
    with service.db.write() as session:
        changed = update_mediator(
            session, mediator_id="med-a", fields={"active": False, "capacity": 3}, calendars=CALENDARS, now=T0
        )
    assert (changed.active, changed.capacity) == (False, 3)
    assert service.file(actor=CONSUMER, new_case=new_case()).mediator_id is None  # inactive: not routed


def test_a_mediator_actor_sees_the_routed_case(service: CaseService) -> None:
    mediator(service, "med-1")
    case = service.file(actor=CONSUMER, new_case=new_case())
    assert service.get(actor=Actor("med-1", "mediator"), case_id=case.id).mediator_id == "med-1"


def test_a_closed_case_no_longer_weighs_on_its_mediator(service: CaseService) -> None:
    mediator(service, "med-a", capacity=1)
    first = service.file(actor=CONSUMER, new_case=new_case(order_ref="o1"))
    assert first.mediator_id == "med-a"
    full = service.file(actor=CONSUMER, new_case=new_case(order_ref="o2"))
    assert full.state == "filed" and full.mediator_id is None  # capacity 1, one open case
    closed = service.execute(actor=CONSUMER, case_id=first.id, name="withdraw")
    assert closed.state == "closed" and closed.closed_at is not None
    with service.db.read() as session:
        assert [(m.id, m.open_load) for m in list_mediators(session)] == [("med-a", 0)]
    clock(service).set(T0 + timedelta(minutes=1))
    assert service.file(actor=CONSUMER, new_case=new_case(order_ref="o3")).mediator_id == "med-a"


def test_a_filings_counts_read_only_their_covering_index_on_sqlite(tmp_path: Path) -> None:
    """The intake's two counts, repeat complaints in the window and open load per mediator and
    priority, are answered from an index range alone, so they cost what the window and the open
    cases hold, not the merchant's or the mediators' whole history; no statement of a filing
    scans the cases (PostgreSQL's plans depend on its statistics: see the report of bench B7)."""
    url = f"sqlite:///{tmp_path / 'plan.db'}"
    engine = make_engine(url)
    SQLModel.metadata.create_all(engine)
    engine.dispose()
    svc = make_clocked_service(url, mediators=())
    try:
        svc.triage = INTAKE
        mediator(svc, "med-a")
        svc.file(actor=CONSUMER, new_case=new_case(order_ref="warm"))
        seen: list[tuple[str, Any]] = []

        def record(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
            if statement.lstrip().upper().startswith("SELECT") and not many:
                seen.append((statement, params))

        event.listen(svc.db.engine, "before_cursor_execute", record)
        try:
            assert svc.file(actor=CONSUMER, new_case=new_case(order_ref="traced")).mediator_id == "med-a"
        finally:
            event.remove(svc.db.engine, "before_cursor_execute", record)
        plans = {}
        with svc.db.engine.connect() as conn:
            driver = conn.connection.driver_connection
            assert driver is not None
            for statement, params in seen:
                steps = driver.execute(f"EXPLAIN QUERY PLAN {statement}", params).fetchall()
                plans[" ".join(statement.split())] = " | ".join(str(step[-1]) for step in steps)
    finally:
        svc.db.dispose()
    assert not [plan for plan in plans.values() if "SCAN cases" in plan], plans
    counts = {sql: plan for sql, plan in plans.items() if "count(*)" in sql and "FROM cases" in sql}
    assert sorted(counts.values()) == [
        "SEARCH cases USING COVERING INDEX ix_cases_mediator_open (mediator_id=? AND closed_at=?)",
        "SEARCH cases USING COVERING INDEX ix_cases_merchant_created (merchant_id=? AND created_at>?)",
    ], counts
