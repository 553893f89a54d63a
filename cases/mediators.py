"""Mediators the router assigns cases to: skills, capacity, duty calendar, open load.

Plain functions with an explicit session; the caller owns the transaction. Who may manage
mediators is the policies' business (desk action ``manage_mediators``; the API checks it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlmodel import Session

from cases import idempotency
from intake.classify import LANGUAGES
from intake.routing import ANY, Candidate, unavailability
from store.db import Database
from store.tables import CASES, MEDIATORS
from workflow.categories import DEFAULT_CATEGORIES
from workflow.errors import DisputeError, InvalidCommandError, MediatorUnavailableError, NotFoundError
from workflow.text import free_text, identifier

MAX_CAPACITY = 1000
Weight = Callable[[str], int]  # priority level -> load units (intake.priority.PriorityRules.weight)


def _unit(level: str) -> int:
    return 1


class MediatorExistsError(DisputeError):
    """A mediator with this id is already registered (HTTP 409)."""

    type_slug = "already-exists"

    def __init__(self, mediator_id: str) -> None:
        super().__init__(f"mediator {mediator_id!r} already exists; change it with PATCH /v1/mediators/{mediator_id}")
        self.mediator_id = mediator_id


@dataclass(frozen=True)
class Mediator:
    id: str
    display_name: str
    categories: tuple[str, ...]
    languages: tuple[str, ...]
    capacity: int
    calendar: str
    active: bool
    last_assigned_at: datetime | None
    created_at: datetime
    updated_at: datetime
    open_load: int = 0  # filled in by list_mediators(with_load=...)

    @classmethod
    def of(cls, row: Any, open_load: int = 0) -> Mediator:
        return cls(
            id=row.id,
            display_name=row.display_name,
            categories=_split(row.categories),
            languages=_split(row.languages),
            capacity=row.capacity,
            calendar=row.calendar,
            active=row.active,
            last_assigned_at=row.last_assigned_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
            open_load=open_load,
        )


def _split(text: str) -> tuple[str, ...]:
    return tuple(part for part in text.split(",") if part)


# --- validation -----------------------------------------------------------------------------

FIELDS = ("display_name", "categories", "languages", "capacity", "calendar", "active")


def validate(
    changes: Mapping[str, Any], calendars: Iterable[str], categories: Iterable[str] = DEFAULT_CATEGORIES.ids
) -> dict[str, Any]:
    """The columns for ``changes`` (any subset of FIELDS), or InvalidCommandError naming the field;
    skills name ``categories`` (the desk's) or "*"."""
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise InvalidCommandError(f"unknown mediator field(s): {', '.join(unknown)}", field=unknown[0])
    values: dict[str, Any] = {}
    if "display_name" in changes:
        values["display_name"] = free_text(changes["display_name"], "display_name", limit=200)
    if "categories" in changes:
        values["categories"] = ",".join(_choices(changes["categories"], (*categories, ANY), "categories"))
    if "languages" in changes:
        values["languages"] = ",".join(_choices(changes["languages"], (*LANGUAGES, ANY), "languages"))
    if "capacity" in changes:
        capacity = changes["capacity"]
        if isinstance(capacity, bool) or not isinstance(capacity, int) or not 0 <= capacity <= MAX_CAPACITY:
            raise InvalidCommandError(f"capacity must be a whole number from 0 to {MAX_CAPACITY}", field="capacity")
        values["capacity"] = capacity
    if "calendar" in changes:
        known = sorted(calendars)
        calendar = identifier(changes["calendar"], "calendar")
        if calendar not in known:
            raise InvalidCommandError(
                f"unknown calendar {calendar!r} (configured: {', '.join(known)})", field="calendar"
            )
        values["calendar"] = calendar
    if "active" in changes:
        if not isinstance(changes["active"], bool):
            raise InvalidCommandError("active must be true or false", field="active")
        values["active"] = changes["active"]
    return values


def _choices(value: Any, allowed: Sequence[str], field: str) -> list[str]:
    if not isinstance(value, (list, tuple)) or not value:
        raise InvalidCommandError(f'{field} must be a non-empty list ("*" for any)', field=field)
    wrong = [(index, v) for index, v in enumerate(value) if v not in allowed]
    if wrong:
        # The field names the first wrong item, as request validation names a list's items.
        raise InvalidCommandError(
            f"unknown {field}: {', '.join(str(v) for _, v in wrong)} (allowed: {', '.join(allowed)})",
            field=f"{field}.{wrong[0][0]}",
        )
    return list(dict.fromkeys(value))


def check_id(mediator_id: Any) -> str:
    """The mediator id in its one form (an identifier, workflow/text.py), without slashes."""
    normal = identifier(mediator_id, "id")
    if "/" in normal:
        # A slash could not be addressed in /v1/mediators/{id}.
        raise InvalidCommandError("id must be the mediator's user id, without slashes", field="id")
    return normal


# --- storage --------------------------------------------------------------------------------


def add_mediator(
    session: Session,
    *,
    mediator_id: str,
    fields: Mapping[str, Any],
    calendars: Iterable[str],
    now: datetime,
    weight: Weight = _unit,
    categories: Iterable[str] = DEFAULT_CATEGORIES.ids,
) -> Mediator:
    mediator_id = check_id(mediator_id)
    missing = [name for name in ("display_name", "categories", "languages", "capacity") if name not in fields]
    if missing:
        raise InvalidCommandError(f"missing field(s): {', '.join(missing)}", field=missing[0])
    calendars = list(calendars)
    values = validate({"calendar": "default", "active": True, **fields}, calendars, categories)
    if session.execute(select(MEDIATORS.c.id).where(MEDIATORS.c.id == mediator_id)).first() is not None:
        raise MediatorExistsError(mediator_id)
    session.execute(insert(MEDIATORS).values(id=mediator_id, created_at=now, updated_at=now, **values))
    return get_mediator(session, mediator_id, weight)


def update_mediator(
    session: Session,
    *,
    mediator_id: str,
    fields: Mapping[str, Any],
    calendars: Iterable[str],
    now: datetime,
    weight: Weight = _unit,
    categories: Iterable[str] = DEFAULT_CATEGORIES.ids,
) -> Mediator:
    values = validate(fields, calendars, categories)
    result = session.execute(update(MEDIATORS).where(MEDIATORS.c.id == mediator_id).values(updated_at=now, **values))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFoundError("mediator", mediator_id)
    return get_mediator(session, mediator_id, weight)


def get_mediator(session: Session, mediator_id: str, weight: Weight = _unit) -> Mediator:
    row = session.execute(select(MEDIATORS).where(MEDIATORS.c.id == mediator_id)).first()
    if row is None:
        raise NotFoundError("mediator", mediator_id)
    loads = open_loads(session, [mediator_id], weight)
    return Mediator.of(row, loads.get(mediator_id, 0))


def list_mediators(session: Session, *, weight: Weight = _unit, active_only: bool = False) -> list[Mediator]:
    """Every mediator by id, with their open weighted load (``weight``: level -> units; default 1 each)."""
    stmt = select(MEDIATORS).order_by(MEDIATORS.c.id)
    if active_only:
        stmt = stmt.where(MEDIATORS.c.active.is_(True))
    rows = session.execute(stmt).all()
    loads = open_loads(session, [r.id for r in rows], weight)
    return [Mediator.of(r, loads.get(r.id, 0)) for r in rows]


def open_loads(session: Session, mediator_ids: Sequence[str], weight: Weight) -> dict[str, int]:
    """Each mediator's open (not closed) cases, weighted by priority level."""
    if not mediator_ids:
        return {}
    rows = session.execute(
        select(CASES.c.mediator_id, CASES.c.priority, func.count())
        .where(CASES.c.mediator_id.in_(list(mediator_ids)), CASES.c.closed_at.is_(None))
        .group_by(CASES.c.mediator_id, CASES.c.priority)
    ).all()
    loads: dict[str, int] = {}
    for mediator_id, priority, count in rows:
        loads[mediator_id] = loads.get(mediator_id, 0) + int(weight(priority)) * int(count)
    return loads


# --- manual assignment ------------------------------------------------------------------------


def require_assignable(
    session: Session, mediator_id: str, *, case_weight: int, weight: Weight = _unit, lock: bool = False
) -> None:
    """Refuse giving a case of ``case_weight`` load units to ``mediator_id`` unless they are a
    registered mediator (else InvalidCommandError: 422), active and with room in their capacity
    (else MediatorUnavailableError: 409). These are the router's own rules
    (``intake.routing.unavailability``); the router also wants duty hours and skills.

    ``lock`` takes the mediator's row first (PostgreSQL), so that two transactions filling the
    last place are decided one after the other, as the router's choices are."""
    stmt = select(MEDIATORS).where(MEDIATORS.c.id == mediator_id)
    row = session.execute(stmt.with_for_update() if lock else stmt).first()
    if row is None:
        raise InvalidCommandError(
            f"{mediator_id!r} is not a registered mediator (see GET /v1/mediators; admins register them)",
            field="data.mediator_id",
        )
    load = open_loads(session, [mediator_id], weight).get(mediator_id, 0)
    candidate = Candidate(
        id=row.id,
        categories=frozenset(_split(row.categories)),
        languages=frozenset(_split(row.languages)),
        capacity=row.capacity,
        load=load,
        active=row.active,
    )
    why = unavailability(candidate, case_weight)
    if why is not None:
        raise MediatorUnavailableError(
            mediator_id, "inactive" if not row.active else "at_capacity", why, open_load=load, capacity=row.capacity
        )


# --- each in a transaction of its own (the API's and the command line's way in) ---------------


def register_mediator(
    db: Database,
    *,
    mediator_id: str,
    fields: Mapping[str, Any],
    calendars: Iterable[str],
    now: datetime,
    weight: Weight = _unit,
    categories: Iterable[str] = DEFAULT_CATEGORIES.ids,
) -> Mediator:
    """:func:`add_mediator` in a write transaction of its own; a request's Idempotency-Key and its
    answer are stored in that transaction too (cases/idempotency.py)."""
    details = _details(mediator_id, fields, calendars, now, weight, categories)
    return db.run_write(lambda session: idempotency.command(session, now, lambda: add_mediator(session, **details)))


def change_mediator(
    db: Database,
    *,
    mediator_id: str,
    fields: Mapping[str, Any],
    calendars: Iterable[str],
    now: datetime,
    weight: Weight = _unit,
    categories: Iterable[str] = DEFAULT_CATEGORIES.ids,
) -> Mediator:
    """:func:`update_mediator` in a write transaction of its own."""
    details = _details(mediator_id, fields, calendars, now, weight, categories)
    return db.run_write(lambda session: update_mediator(session, **details))


def _details(
    mediator_id: str,
    fields: Mapping[str, Any],
    calendars: Iterable[str],
    now: datetime,
    weight: Weight,
    categories: Iterable[str],
) -> dict[str, Any]:
    """The keyword arguments :func:`add_mediator` and :func:`update_mediator` share."""
    return {
        "mediator_id": mediator_id,
        "fields": fields,
        "calendars": calendars,
        "now": now,
        "weight": weight,
        "categories": categories,
    }


def registered_mediators(db: Database, *, weight: Weight = _unit) -> list[Mediator]:
    """:func:`list_mediators` in a read transaction of its own."""
    with db.read() as session:
        return list_mediators(session, weight=weight)
