"""Reloading a whole desk (SIGHUP, `disputes config reload`): validated first, the desk in force
keeps serving on any problem; new workflow versions apply to new cases, open cases stay pinned."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from cases.registry import WorkflowRegistry
from cases.service import CaseService
from cases.sweep import fire_due_timers
from desk.loader import write_packaged_desk
from runtime.bootstrap import build_engine, reload_configuration
from runtime.engine import Engine
from runtime.settings import Settings
from sla.clock import ManualClock
from tests.support.actors import CONSUMER, MEDIATOR, MERCHANT, T0
from tests.support.builders import new_case, register_mediators
from workflow.model import Actor, CaseSnapshot, from_iso

AUDITOR = Actor("aud-1", "auditor")


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[tuple[Path, Engine, CaseService, ManualClock]]:
    root = tmp_path / "desk"
    write_packaged_desk(root)
    settings = Settings(environment="test", database_url=db_url, run_ticker=False, config_dir=root)
    clock = ManualClock(T0)
    engine = build_engine(settings, clock=clock)
    service = engine.cases
    register_mediators(service, [MEDIATOR.id])
    yield root, engine, service, clock
    service.db.dispose()


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def response_due(service: CaseService, case_id: str) -> timedelta:
    case = service.get(actor=AUDITOR, case_id=case_id)
    timer = case.timer("merchant_response")
    assert timer is not None
    return from_iso(timer.due_at) - from_iso(timer.started_at)


def assigned(service: CaseService, **overrides: object) -> CaseSnapshot:
    """A case filed and assigned: the desk's router gives it to its one mediator at once."""
    case = service.file(actor=CONSUMER, new_case=new_case(**overrides))
    assert (case.state, case.mediator_id) == ("assigned", MEDIATOR.id)
    return case


Breakage = Callable[[Path], None]


def bad_yaml(root: Path) -> None:
    edit(root / "workflows" / "consumer_dispute.yaml", "initial: filed", "initial: [filed")


def bad_cedar(root: Path) -> None:
    edit(root / "policies" / "triggers.cedar", '@id("consumer-reopens")', '@id("consumer-reopens") oops')


def bad_calendar(root: Path) -> None:
    edit(root / "calendars.yaml", "timezone: Asia/Shanghai", "timezone: Mars/Olympus")


def bad_cross_reference(root: Path) -> None:
    edit(
        root / "workflows" / "consumer_dispute.yaml",
        "calendar: default\n    warn_at: 0.75\n    stop_on: [assign]",
        "calendar: festival\n    warn_at: 0.75\n    stop_on: [assign]",
    )


@pytest.mark.parametrize("breakage", [bad_yaml, bad_cedar, bad_calendar, bad_cross_reference])
def test_any_problem_keeps_the_whole_desk_in_force(
    served: tuple[Path, Engine, CaseService, ManualClock], breakage: Breakage
) -> None:
    root, engine, service, _ = served
    workflow, authorizer = service.registry.active(), service.authorizer
    assert service.sla is not None
    calendars = service.sla.calendars
    # A valid change elsewhere in the same reload must not slip in either.
    edit(root / "workflows" / "consumer_dispute.yaml", "goal: 48h", "goal: 72h")
    breakage(root)
    problems = reload_configuration(engine)
    assert problems and all(str(root) in p for p in problems)
    assert service.registry.active() is workflow and service.authorizer is authorizer
    assert service.sla.calendars is calendars
    case = assigned(service)
    assert response_due(service, case.id) == timedelta(hours=48)


def test_new_cases_get_the_new_version_and_open_cases_stay_pinned(
    served: tuple[Path, Engine, CaseService, ManualClock], db_url: str
) -> None:
    root, engine, service, clock = served
    before = assigned(service)
    old_version = before.workflow_version
    edit(root / "workflows" / "consumer_dispute.yaml", "goal: 48h", "goal: 72h")
    assert reload_configuration(engine) == []
    after = assigned(service, order_ref="ORD-2")
    assert after.workflow_version != old_version == before.workflow_version
    assert response_due(service, before.id) == timedelta(hours=48)
    assert response_due(service, after.id) == timedelta(hours=72)
    # The open case goes on under its pinned version: its 48-hour clock decides it.
    clock.advance(timedelta(hours=48))
    fire_due_timers(service, clock.now())
    assert service.get(actor=AUDITOR, case_id=before.id).state == "settled"
    assert service.get(actor=AUDITOR, case_id=after.id).state == "assigned"
    service.execute(actor=MERCHANT, case_id=after.id, name="respond", data={"statement": "in time"})
    # The new version was stored, so any process can replay the new case.
    with service.db.read() as session:
        assert (
            WorkflowRegistry.from_directory().pinned(after.workflow_version, session).version == after.workflow_version
        )


def test_a_second_workflow_becomes_the_default_for_new_cases(
    served: tuple[Path, Engine, CaseService, ManualClock],
) -> None:
    root, engine, service, _ = served
    first = service.file(actor=CONSUMER, new_case=new_case())
    text = (root / "workflows" / "consumer_dispute.yaml").read_text(encoding="utf-8")
    (root / "workflows" / "festival.yaml").write_text(
        text.replace("name: consumer_dispute", "name: festival_dispute").replace("goal: 48h", "goal: 72h"),
        encoding="utf-8",
    )
    edit(root / "desk.yaml", "default_workflow: consumer_dispute", "default_workflow: festival_dispute")
    assert reload_configuration(engine) == []
    second = service.file(actor=CONSUMER, new_case=new_case(order_ref="ORD-2"))
    assert (first.workflow_name, second.workflow_name) == ("consumer_dispute", "festival_dispute")
    # Both were routed to the desk's mediator on filing, each under its own workflow's clocks.
    assert (first.state, second.state) == ("assigned", "assigned")
    assert response_due(service, first.id) == timedelta(hours=48)
    assert response_due(service, second.id) == timedelta(hours=72)
