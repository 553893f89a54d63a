"""A caller's notification inbox (unread count, list, mark read) and their contact settings.

The inbox of a caller is every notice addressed to one of their recipient keys
(notify/plan.py ``inbox_keys``: their side's key and their own as a user). Contacts are
personal data and live in ``contacts`` only, one row per recipient key, so erasure deletes
one row (:func:`forget_contact`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from cases import idempotency
from cases.service import CaseService
from notify.plan import inbox_keys
from notify.rules import KINDS, LANGUAGES, SYSTEM_KINDS, NotificationRules
from notify.templates import language_of, render
from outbox.texts import recipient_keys, shown
from store.tables import CONTACTS, NOTICES
from workflow.errors import InvalidCommandError, NotFoundError
from workflow.model import Actor


@dataclass(frozen=True, slots=True)
class InboxNotice:
    id: int
    kind: str
    case_id: str
    seq: int
    subject: str
    body: str
    data: dict[str, Any]
    created_at: datetime
    read_at: datetime | None


@dataclass(frozen=True, slots=True)
class Contact:
    email: str | None
    language: str
    email_kinds: tuple[str, ...]
    digest: bool


def keys_of(cases: CaseService, actor: Actor) -> list[str]:
    """The caller's recipient keys as the log knows them (outbox/texts.py recipient_keys)."""
    return recipient_keys(cases, actor)


def _keys(logged: Actor) -> list[str]:
    return inbox_keys(logged.id, logged.party, logged.merchant_id)


def contact_key(cases: CaseService, actor: Actor) -> str:
    """The recipient key a caller's contact settings belong to (a merchant user sets the merchant's)."""
    return keys_of(cases, actor)[-1]


def unread_count(cases: CaseService, actor: Actor) -> int:
    with cases.db.read() as session:
        return int(
            session.execute(
                select(func.count())
                .select_from(NOTICES)
                .where(NOTICES.c.recipient.in_(keys_of(cases, actor)), NOTICES.c.read_at.is_(None))
            ).scalar_one()
        )


def list_notices(
    cases: CaseService,
    rules: NotificationRules,
    actor: Actor,
    *,
    unread_only: bool = False,
    before: int | None = None,
    limit: int = 50,
    language: str | None = None,
) -> tuple[list[InboxNotice], int | None]:
    """Newest first, rendered in the caller's language (``language``, as the console shows
    them, or else their contact's); and the id the next page continues before."""
    limit = max(1, min(limit, 200))
    stmt = select(NOTICES).where(NOTICES.c.recipient.in_(keys_of(cases, actor)))
    if unread_only:
        stmt = stmt.where(NOTICES.c.read_at.is_(None))
    if before is not None:
        stmt = stmt.where(NOTICES.c.pk < before)
    with cases.db.read() as session:
        rows = session.execute(stmt.order_by(NOTICES.c.pk.desc()).limit(limit + 1)).all()
        contact_language = session.execute(
            select(CONTACTS.c.language).where(CONTACTS.c.recipient == contact_key(cases, actor))
        ).scalar()
    lang = language_of(language or contact_language)
    out = []
    for r in rows[:limit]:
        data = json.loads(r.data)
        facts = shown(cases, r.recipient, r.case_id, data)
        rendered = render(r.kind, lang, facts, rules.category(str(facts.get("category", ""))))
        out.append(
            InboxNotice(r.pk, r.kind, r.case_id, r.seq, rendered.subject, rendered.body, data, r.created_at, r.read_at)
        )
    return out, (rows[limit - 1].pk if len(rows) > limit else None)


def mark_read(cases: CaseService, actor: Actor, ids: list[int] | None, now: datetime) -> int:
    """Mark the caller's notices read (``ids`` None: all of them); returns how many changed."""
    condition = and_(NOTICES.c.recipient.in_(keys_of(cases, actor)), NOTICES.c.read_at.is_(None))
    if ids is not None:
        if not ids:
            return 0
        condition = and_(condition, NOTICES.c.pk.in_(ids))

    def work(session: Any) -> int:
        if ids is not None:
            found = session.execute(
                select(func.count())
                .select_from(NOTICES)
                .where(NOTICES.c.pk.in_(ids), NOTICES.c.recipient.in_(keys_of(cases, actor)))
            ).scalar_one()
            if found != len(set(ids)):
                raise NotFoundError("notice", ",".join(str(i) for i in ids))
        return int(session.execute(update(NOTICES).where(condition).values(read_at=now)).rowcount)

    return int(cases.db.run_write(lambda s: idempotency.command(s, now, lambda: work(s))))


def get_contact(cases: CaseService, actor: Actor) -> Contact:
    with cases.db.read() as session:
        row = session.execute(select(CONTACTS).where(CONTACTS.c.recipient == contact_key(cases, actor))).first()
    if row is None:
        return Contact(None, "en", ("*",), False)
    return Contact(row.email, row.language, tuple(k for k in row.email_kinds.split(",") if k), row.digest)


def set_contact(
    cases: CaseService,
    actor: Actor,
    *,
    email: str | None,
    language: str,
    email_kinds: list[str],
    digest: bool,
    now: datetime,
) -> Contact:
    if language not in LANGUAGES:
        raise InvalidCommandError(f"language is one of {', '.join(LANGUAGES)}", field="language")
    if email is not None and ("@" not in email or len(email) > 320 or any(c.isspace() for c in email)):
        raise InvalidCommandError("not an e-mail address", field="email")
    known = {*KINDS, *SYSTEM_KINDS, "*"}
    unknown = [k for k in email_kinds if k not in known]
    if unknown:
        raise InvalidCommandError(
            f"unknown notice kind {unknown[0]!r} (kinds: {', '.join(sorted(known))})", field="email_kinds"
        )
    values = {
        "email": email,
        "language": language,
        "email_kinds": ",".join(email_kinds),
        "digest": digest,
        "updated_at": now,
    }

    def work(session: Any) -> None:
        logged = actor
        if cases.privacy is not None and actor.role == "consumer":
            # A consumer who sets up notices before their first filing gets their pseudonym now,
            # as a first filing would make it: notices are addressed by it.
            logged = Actor(str(cases.privacy.subject_of(session, actor.id, now=now)), actor.role)
        insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        stmt = insert(CONTACTS).values(recipient=_keys(logged)[-1], **values)
        session.execute(stmt.on_conflict_do_update(index_elements=["recipient"], set_=values))

    cases.db.run_write(work)
    return get_contact(cases, actor)


def forget_contact(cases: CaseService, actor: Actor) -> bool:
    """Delete a caller's contact row (personal data); True if there was one. Erasing a consumer
    (cases/erasure.py) deletes theirs with the rest of their personal data."""
    recipient = contact_key(cases, actor)

    def work(session: Any) -> int:
        return int(session.execute(delete(CONTACTS).where(CONTACTS.c.recipient == recipient)).rowcount)

    return bool(cases.db.run_write(work))
