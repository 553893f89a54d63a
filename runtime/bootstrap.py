"""Building the Engine from settings, and serving another desk without a restart.

:func:`build_engine` is the one place where the parts of a running desk are made and wired:
the database, the time source, the workflow registry, the policy store, the SLA planner, the
triage and its warning subscription, the case service. It records the configuration's versions
once (not in any constructor), so every case can be replayed and exported.
"""

from __future__ import annotations

import logging

from cases.learning import promoted_model
from cases.personal import PersonalData
from cases.registry import WorkflowRegistry, record_versions
from cases.service import CaseService, reroute_on_warning
from cases.sweep import reschedule_running
from cases.triage import Triage
from desk.loader import Desk, load_desk, try_load_desk
from outbox.hook import OutboxHook
from policies.base import AllowAllAuthorizer
from policies.store import PolicyStore
from runtime.engine import Engine
from runtime.settings import Settings, key_provider
from sla.clock import Clock, SystemClock
from sla.planner import SlaPlanner
from store.db import Database

log = logging.getLogger("disputes")


def build_engine(settings: Settings, *, clock: Clock | None = None, desk: Desk | None = None) -> Engine:
    """The engine running the configured desk (DISPUTES_CONFIG_DIR; unset: the packaged default
    desk). Raises :class:`desk.loader.InvalidDeskError` naming every problem if the desk is unsound."""
    desk = desk or load_desk(settings.config_dir)
    store: PolicyStore | None = None
    if settings.allow_all:
        log.warning("DISPUTES_ALLOW_ALL is set: NO POLICIES ARE CHECKED, every request is allowed")
    else:
        store = PolicyStore(desk.policies, workflows=desk.workflows)
    # Every write to a case records what it must tell, in its own transaction.
    outbox = OutboxHook(desk.notifications)
    cases = CaseService(
        db=Database(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
        ),
        registry=WorkflowRegistry(
            list(desk.workflows), default=desk.default_workflow, rules=desk.manifest.workflow_rules
        ),
        authorizer=store.current if store is not None else AllowAllAuthorizer(),
        clock=clock or SystemClock(),
        sla=SlaPlanner(desk.calendars),
        triage=Triage.of_desk(desk),
        rulebook=desk.parts.get("rulebook"),
        categories=desk.categories,
        # A clock's warning gives the router another try at a case still waiting for a mediator.
        on_timer_warned=(reroute_on_warning,),
        # Personal texts and consumer ids leave the log for sealed rows beside it (docs/privacy.md).
        privacy=PersonalData(key_provider(settings)),
        on_written=(outbox,),
        retention=desk.manifest.retention,
    )
    record_versions(cases.db, cases.registry, cases.authorizer, cases.clock.now())
    cases.triage = with_promoted_model(cases)
    return Engine(settings=settings, cases=cases, policies=store, outbox=outbox)


def with_promoted_model(cases: CaseService) -> Triage | None:
    """The desk's triage with the newest model ``disputes intake retrain`` promoted, when it was
    trained for the same encoder and categories as the desk's shipped model."""
    triage = cases.triage
    if triage is None or triage.model is None:
        return triage
    model = promoted_model(cases.db)
    if model is None or model.embedder_version != triage.model.embedder_version:
        return triage
    if model.categories != triage.model.categories:
        return triage
    return triage.with_model(model)


def reload_configuration(engine: Engine) -> list[str]:
    """Reload the whole desk (SIGHUP, `disputes config reload`): every part and every
    cross-reference is validated first; on any problem the desk in force keeps serving
    unchanged and the problems are returned as text."""
    desk, problems = try_load_desk(engine.settings.config_dir)
    if desk is None:
        for problem in problems:
            log.error("desk reload refused: %s", problem)
        return [str(p) for p in problems]
    apply_desk(engine, desk)
    return []


def apply_desk(engine: Engine, desk: Desk) -> None:
    """Serve a validated desk. New cases get the new workflow versions; open cases stay pinned
    to theirs (the registry keeps every version resolvable). Policies are swapped before the
    workflows: in between, a new trigger is refused (deny by default), never wrongly allowed.
    Running clocks are rescheduled when a calendar changed."""
    cases = engine.cases
    now = cases.clock.now()
    if engine.policies is not None:
        engine.policies.replace(desk.policies, workflows=desk.workflows)
        cases.authorizer = engine.policies.current
    cases.registry.replace_active(
        list(desk.workflows), default=desk.default_workflow, rules=desk.manifest.workflow_rules
    )
    record_versions(cases.db, cases.registry, cases.authorizer, now)
    cases.categories = desk.categories
    cases.triage = Triage.of_desk(desk)
    if engine.outbox is not None:
        engine.outbox.rules = desk.notifications
    cases.triage = with_promoted_model(cases)
    cases.rulebook = desk.parts.get("rulebook")
    if cases.retention != desk.manifest.retention:
        log.warning("personal data retention: %d years after closing", desk.manifest.retention_years)
    cases.retention = desk.manifest.retention
    planner = cases.sla
    if planner is not None and planner.calendars != desk.calendars:
        planner.calendars = dict(desk.calendars)
        moved = reschedule_running(cases, now, "calendar configuration changed")
        log.warning("calendars reloaded: %d cases' deadlines moved", moved)
    log.warning("desk %s reloaded: %s", desk.name, desk.version)
