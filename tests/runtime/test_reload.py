"""Reloading configuration: validated first, the old set keeps serving on any error,
and a calendar change moves running deadlines."""

from __future__ import annotations

import shutil
from pathlib import Path

from cases.registry import WorkflowRegistry
from cases.service import CaseService
from cli.desk import policy_dir
from policies.store import PolicyStore
from runtime.bootstrap import reload_configuration
from runtime.engine import Engine
from runtime.settings import Settings
from sla.config import default_calendars
from sla.planner import SlaPlanner
from tests.support.actors import CONSUMER, MEDIATOR, MERCHANT, T0
from tests.support.builders import engine_of, make_service, new_case
from workflow.model import Actor, from_iso

POLICIES = Path(__file__).resolve().parents[2] / "policies" / "default"
CALENDARS = Path(__file__).resolve().parents[2] / "sla" / "calendars.yaml"
AUDITOR = Actor("aud-1", "auditor")


def desk(tmp_path: Path) -> Path:
    root = tmp_path / "desk"
    shutil.copytree(POLICIES, root / "policies")
    shutil.copy(CALENDARS, root / "calendars.yaml")
    return root


def served_desk(db_url: str, tmp_path: Path) -> tuple[Path, Engine, CaseService]:
    """A desk directory and an engine wired to it the way the app wires one."""
    root = desk(tmp_path)
    settings = Settings(environment="test", database_url=db_url, config_dir=root)
    store = PolicyStore.open(policy_dir(settings), workflows=WorkflowRegistry.from_directory().active_definitions)
    service = make_service(db_url, authorizer=store.current, sla=SlaPlanner(default_calendars()))
    return root, engine_of(service, settings, policies=store), service


def test_broken_policies_keep_the_old_set_and_a_fixed_one_is_taken(db_url: str, tmp_path: Path) -> None:
    root, engine, service = served_desk(db_url, tmp_path)
    before = service.authorizer.version
    triggers = root / "policies" / "triggers.cedar"
    original = triggers.read_text(encoding="utf-8")
    triggers.write_text(original + "\npermit (principal, action, resource) when { oops };\n", encoding="utf-8")
    problems = reload_configuration(engine)
    assert problems and "triggers.cedar" in problems[0]
    assert service.authorizer.version == before
    case = service.file(actor=CONSUMER, new_case=new_case())  # still served by the old set
    # A real change: withdrawals are paused by a new forbid.
    triggers.write_text(original, encoding="utf-8")
    (root / "policies" / "guards.cedar").write_text(
        (root / "policies" / "guards.cedar").read_text(encoding="utf-8")
        + '\n@id("no-withdrawals-today")\n@reason("withdrawals are paused")\n'
        'forbid (principal, action == Action::"withdraw", resource is Case);\n',
        encoding="utf-8",
    )
    assert reload_configuration(engine) == []
    assert service.authorizer.version != before
    decision = service.authorizer.decide(
        actor=CONSUMER, action="withdraw", case=service.get(actor=CONSUMER, case_id=case.id), now=T0
    )
    assert not decision.allowed and "withdrawals are paused" in decision.reasons
    service.db.dispose()


def test_a_new_holiday_moves_running_deadlines(db_url: str, tmp_path: Path) -> None:
    root, engine, service = served_desk(db_url, tmp_path)
    case = service.file(actor=CONSUMER, new_case=new_case())
    service.execute(actor=MEDIATOR, case_id=case.id, name="assign")
    service.execute(actor=MERCHANT, case_id=case.id, name="respond", data={"statement": "ok"})
    service.execute(actor=MEDIATOR, case_id=case.id, name="start_mediation")
    due = from_iso(next(t for t in service.get(actor=AUDITOR, case_id=case.id).timers if t.name == "resolution").due_at)
    calendars = root / "calendars.yaml"
    calendars.write_text(
        calendars.read_text(encoding="utf-8").replace("extra_days_off: []", "extra_days_off: [2026-03-04]"),
        encoding="utf-8",
    )
    assert reload_configuration(engine) == []
    moved = from_iso(
        next(t for t in service.get(actor=AUDITOR, case_id=case.id).timers if t.name == "resolution").due_at
    )
    assert (moved - due).days == 1
    history = service.events(actor=AUDITOR, case_id=case.id, limit=200).data
    assert history[-1].type == "timer_rescheduled" and history[-1].data["reason"] == "calendar configuration changed"
    calendars.write_text("calendars: {default: {timezone: Mars/Olympus}}\n", encoding="utf-8")
    assert reload_configuration(engine)  # refused, the previous calendars keep serving
    service.db.dispose()
