"""Firing due SLA timers on cases, rescheduling them when calendars change, and the urgency queue.

Timers live in the ``timers`` table (a projection of the timer events in each case's log),
never only in memory. The ticker (runtime/ticker.py) calls :func:`fire_due_timers`; it claims
due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serialises writers), appends the
warning or breach event and, for a breach, fires the configured trigger as ``system`` through
the same decide/policy path a person goes through (or, for an ordered list, the first trigger
the state machine and the policies allow), all in one transaction per timer. A breach none of
whose triggers is possible or permitted is still recorded, and flagged. Which events
a change causes is the pure planner's business (sla/planner.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import and_, func, or_, select, true, update
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from cases.commands import UnitOfWork
from cases.projection import timer_values
from cases.queries import condition_sql, fill_page, load_case, load_snapshot, seen_all, viewable
from cases.service import CaseService
from policies.base import require
from policies.visibility import FALSE, TRUE
from sla.planner import LIVE, SlaPlanner, TimerView
from sla.timers import replan
from store.codec import snapshot_from_json
from store.tables import CASES, TIMERS
from workflow.decide import decide
from workflow.errors import ConflictError, DisputeError, InvalidCommandError, TransitionNotAllowedError
from workflow.events import Event
from workflow.merchant import seen_with, with_standing
from workflow.model import SYSTEM, Actor, CaseSnapshot, Command, from_iso, to_iso

log = logging.getLogger("disputes.timers")


def fire_due_timers(service: CaseService, now: datetime, *, batch: int = 100, max_batches: int = 1000) -> int:
    """Fire every warning and breach due at ``now``; return how many effects were applied.

    Each claimed timer is handled in a savepoint, so one case's trouble (a
    concurrent writer, a refused trigger) never loses the others' effects.
    """
    fired = 0
    for _ in range(max_batches):
        claimed, applied = service.db.run_write(lambda session: _sweep(session, service, now, batch))
        fired += applied
        if claimed < batch or applied == 0:
            return fired
    return fired


def _sweep(session: Session, service: CaseService, now: datetime, batch: int) -> tuple[int, int]:
    stmt = (
        select(TIMERS.c.case_id, TIMERS.c.name)
        .where(TIMERS.c.next_fire_at <= now)
        .order_by(TIMERS.c.next_fire_at)
        .limit(batch)
    )
    if service.db.dialect == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = session.execute(stmt).all()
    applied = 0
    for case_id, name in rows:
        try:
            with session.begin_nested():
                applied += _fire_one(session, service, case_id, name, now)
        except ConflictError:
            log.info("timer %s of %s: case changed concurrently; retried next sweep", name, case_id)
        except OperationalError:
            raise
        except Exception:
            log.exception("timer %s of case %s could not fire; retried next sweep", name, case_id)
    return len(rows), applied


def _fire_one(session: Session, service: CaseService, case_id: str, name: str, now: datetime) -> int:
    before, standing = load_case(session, case_id)
    timer = before.timer(name)
    if timer is None or timer.status != "running":
        # The row is stale (it cannot be in the same transaction; be safe): re-sync it.
        if timer is not None:
            session.execute(
                update(TIMERS)
                .where(TIMERS.c.case_id == case_id, TIMERS.c.name == name)
                .values(**timer_values(case_id, timer))
            )
        return 0
    machine = service.registry.machine(before.workflow_version, session)
    definition = machine.definition
    spec = definition.timer(name)
    authorizer = service.authorizer  # one policy set decides and is recorded for this effect
    work = UnitOfWork(service, definition, before, case_id, now, authorizer=authorizer)
    due = from_iso(timer.due_at)
    warned = False
    if timer.warn_at and not timer.warned and from_iso(timer.warn_at) <= now:
        work.add([Event("timer_warned", {"timer": name, "due_at": timer.due_at})], SYSTEM)
        warned = True
    if now >= due:
        breach = spec.on_breach
        if breach.flag:
            work.add(
                [
                    Event("timer_breached", {"timer": name, "due_at": timer.due_at, "flag": breach.flag}),
                    Event("flag_raised", {"flag": breach.flag, "timer": name}),
                ],
                SYSTEM,
            )
        else:
            candidates = breach.candidates
            data: dict[str, object] = {"timer": name, "due_at": timer.due_at}
            # One trigger: recorded as it always was; an ordered list: every candidate, in order.
            data.update({"triggers": list(candidates)} if breach.triggers else {"trigger": candidates[0]})
            work.add([Event("timer_breached", data)], SYSTEM)
            middle = work.current
            refusals: list[str] = []
            for trigger in candidates:
                try:
                    if not machine.may(middle.state, trigger):
                        raise TransitionNotAllowedError(trigger, middle.state, machine.possible_triggers(middle.state))
                    require(authorizer, actor=SYSTEM, action=trigger, case=seen_with(middle, standing), now=now)
                    events = decide(machine, middle, Command(trigger, SYSTEM, now, {}, f"the {name} clock breached"))
                except DisputeError as exc:
                    refusals.append(str(exc))
                    continue  # an ordered breach tries the next trigger; refusing one is not trouble
                work.add(with_standing(events, standing, middle), SYSTEM)
                work.follow_up(trigger, middle)
                break
            else:
                # Recorded and flagged, never lost: a person must look at this case.
                work.add(
                    [
                        Event(
                            "flag_raised",
                            {"flag": f"{name}_breach_unactioned", "timer": name, "reason": "; ".join(refusals)},
                        )
                    ],
                    SYSTEM,
                )
    if not work.records:
        # Not due after all (clock skew between sweeps): re-sync the row's next instant.
        session.execute(
            update(TIMERS)
            .where(TIMERS.c.case_id == case_id, TIMERS.c.name == name)
            .values(**timer_values(case_id, timer))
        )
        return 0
    work.write(session)
    if warned and now < due:
        _after_warning(session, service, case_id, name, now)
    return 1


def _after_warning(session: Session, service: CaseService, case_id: str, name: str, now: datetime) -> None:
    """Tell the warning's subscribers (``CaseService.on_timer_warned``), each in its own savepoint:
    a subscriber's failure never loses the warning."""
    for hook in service.on_timer_warned:
        try:
            with session.begin_nested():
                hook(session, service, case_id, name, now)
        except OperationalError:
            raise
        except Exception:
            log.exception("warn hook %r on timer %s of case %s failed; the warning stands", hook, name, case_id)


def reschedule_running(service: CaseService, now: datetime, reason: str) -> int:
    """After a calendar change, recompute every running timer's due instant from its start
    and paused time; record a ``timer_rescheduled`` event on each case whose deadline moved."""
    changed = 0
    last = ""
    while True:
        with service.db.read() as session:
            rows = session.execute(
                select(TIMERS.c.case_id)
                .where(TIMERS.c.status.in_(LIVE), TIMERS.c.case_id > last)
                .group_by(TIMERS.c.case_id)
                .order_by(TIMERS.c.case_id)
                .limit(200)
            ).all()
        if not rows:
            return changed
        for (case_id,) in rows:
            changed += service.db.run_write(
                partial(_reschedule_case, service=service, case_id=case_id, now=now, reason=reason)
            )
        last = rows[-1][0]


def _reschedule_case(session: Session, *, service: CaseService, case_id: str, now: datetime, reason: str) -> int:
    planner = _planner(service)
    before = load_snapshot(session, case_id)
    definition = service.registry.pinned(before.workflow_version, session)
    events = []
    for timer in before.timers:
        if timer.status not in LIVE:
            continue
        spec = definition.timer(timer.name)
        if spec.due_from is not None:
            continue  # due at a fact's instant: no calendar moves it
        plan = replan(
            spec,
            planner.calendar(spec),
            started_at=from_iso(timer.started_at),
            paused_business_seconds=timer.paused_seconds,
        )
        due, warn = to_iso(plan.due_at), to_iso(plan.warn_at) if plan.warn_at else None
        if timer.status == "paused":
            continue  # its due instant is recomputed when it resumes
        if due != timer.due_at or (warn != timer.warn_at and not timer.warned):
            events.append(
                Event(
                    "timer_rescheduled",
                    {
                        "timer": timer.name,
                        "due_at": due,
                        "warn_at": warn if not timer.warned else timer.warn_at,
                        "previous_due_at": timer.due_at,
                        "reason": reason,
                    },
                )
            )
    if not events:
        return 0
    work = UnitOfWork(service, definition, before, case_id, now)
    work.add(events, SYSTEM)
    work.write(session)
    return 1


def case_timers(service: CaseService, *, actor: Actor, case_id: str) -> list[TimerView]:
    """The case's clocks as the caller may see them (view policy applies)."""
    snapshot = service.get(actor=actor, case_id=case_id)
    with service.db.read() as session:
        definition = service.registry.pinned(snapshot.workflow_version, session)
    planner = _planner(service)
    now = service.clock.now()
    return [planner.view(definition, t, now) for t in snapshot.timers]


@dataclass(frozen=True)
class QueueItem:
    case: CaseSnapshot
    timer: TimerView | None


QueueKey = tuple[datetime, str]  # the most urgent due instant and the case id: the queue's order


def queue(
    service: CaseService,
    *,
    actor: Actor,
    limit: int = 50,
    after: QueueKey | None = None,
    state: str | None = None,
    category: str | None = None,
    merchant_id: str | None = None,
    priority: str | None = None,
    breaching: bool | None = None,
) -> tuple[list[QueueItem], QueueKey | None]:
    """Open cases the caller can act on, most urgent running clock first, and the key the next
    page continues after (None at the end).

    ``after`` is the key of the previous page (the cursor ``"<due_at ISO>|<case id>"``,
    validated by ``api/params.py``); ``state``, ``category``, ``merchant_id``, ``priority`` and
    ``breaching`` narrow it (the console's inbox and queue filters). A senior mediator's queue
    also holds the escalations awaiting a ruling, whoever holds them. Like
    ``CaseService.list_cases``, the rows are those meeting the condition derived from the view
    policies, decided by Cedar row by row where the condition is wider than the policies
    (``cases.queries.fill_page``).
    """
    limit = max(1, min(limit, 200))
    authorizer = service.authorizer
    actor = service.as_logged(actor)  # a consumer by their pseudonym, as the log knows them
    visibility = authorizer.visibility(actor=actor)
    if visibility.condition == FALSE:
        return [], None
    # Each case's most urgent running clock is the running timer no other running timer of the
    # case precedes (by due instant, then name). The page walks the running timers in the order
    # of ix_timers_running_due (status, due_at, case_id) and stops after a page: a grouped
    # minimum per case would read and sort every open case's timers first (B11).
    urgent = TIMERS.alias("urgent")
    earlier = TIMERS.alias("earlier")
    precedes = (
        select(earlier.c.case_id)
        .where(
            earlier.c.case_id == urgent.c.case_id,
            earlier.c.status == "running",
            or_(
                earlier.c.due_at < urgent.c.due_at,
                and_(earlier.c.due_at == urgent.c.due_at, earlier.c.name < urgent.c.name),
            ),
        )
        .exists()
    )
    candidates = (
        select(CASES.c.snapshot, urgent.c.due_at, CASES.c.id)
        .select_from(urgent.join(CASES, CASES.c.id == urgent.c.case_id))
        .where(urgent.c.status == "running", ~precedes, CASES.c.closed_at.is_(None))
    )
    if state is not None:
        candidates = candidates.where(CASES.c.state == state)
    if category is not None:
        candidates = candidates.where(CASES.c.category == category)
    if merchant_id is not None:
        candidates = candidates.where(CASES.c.merchant_id == merchant_id)
    if priority is not None:
        candidates = candidates.where(CASES.c.priority == priority)
    if breaching is not None:
        candidates = candidates.where(CASES.c.breaching.is_(breaching))
    if visibility.condition != TRUE:
        candidates = candidates.where(condition_sql(visibility.condition))
    candidates = candidates.where(acting_on(actor))

    def read(key: QueueKey | None, count: int) -> list[tuple[QueueKey, CaseSnapshot]]:
        stmt = candidates
        if key is not None:
            due, last_id = key
            stmt = stmt.where(or_(urgent.c.due_at > due, and_(urgent.c.due_at == due, urgent.c.case_id > last_id)))
        with service.db.read() as session:
            rows = session.execute(stmt.order_by(urgent.c.due_at, urgent.c.case_id).limit(count)).all()
            # As the policies see them now: with their merchant's current flag.
            seen = seen_all(session, [snapshot_from_json(row[0]) for row in rows])
        return [((due_at, case_id), case) for (_, due_at, case_id), case in zip(rows, seen, strict=True)]

    now = service.clock.now()
    decide = None if visibility.decided else viewable(authorizer, actor, now)
    shown, next_key = fill_page(read, decide, after, limit)
    planner = _planner(service)
    items = []
    with service.db.read() as session:
        definitions = {}
        for _key, snapshot in shown:
            if snapshot.workflow_version not in definitions:
                definitions[snapshot.workflow_version] = service.registry.pinned(snapshot.workflow_version, session)
            running = sorted((t for t in snapshot.timers if t.status == "running"), key=lambda t: t.due_at)
            view = planner.view(definitions[snapshot.workflow_version], running[0], now) if running else None
            items.append(QueueItem(case=snapshot, timer=view))
        items = service.reveal(items, session=session)
    return items, next_key


def acting_on(actor: Actor) -> Any:
    """ "Can act on" for mediators: their own cases, the unassigned pool (cases nobody holds) and,
    for a senior mediator, the escalations awaiting a ruling. Others: no narrowing."""
    if actor.role == "senior_mediator":
        return or_(CASES.c.mediator_id == actor.id, CASES.c.mediator_id.is_(None), CASES.c.state == "escalated")
    if actor.role == "mediator":
        return or_(CASES.c.mediator_id == actor.id, CASES.c.mediator_id.is_(None))
    return true()


def queue_counts(service: CaseService, *, actor: Actor) -> dict[str, int]:
    """Open cases per state in the caller's queue (before filters), from the cases table."""
    authorizer = service.authorizer
    visibility = authorizer.visibility(actor=actor)
    if visibility.condition == FALSE:
        return {}
    stmt = (
        select(CASES.c.state, func.count()).where(CASES.c.closed_at.is_(None), acting_on(actor)).group_by(CASES.c.state)
    )
    if visibility.condition != TRUE:
        stmt = stmt.where(condition_sql(visibility.condition))
    with service.db.read() as session:
        return {state: int(count) for state, count in session.execute(stmt).all()}


def _planner(service: CaseService) -> SlaPlanner:
    if service.sla is None:
        raise InvalidCommandError("this engine runs without SLA clocks")
    return service.sla
