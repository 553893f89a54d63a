"""Query parameters several routers share: instants (ISO 8601) and the cursors of the paginated
routes, each read and validated in one place.

Cursors are the ``next_cursor`` of the previous page, handed back by the client: opaque to
it, but it passes through its hands and may come back truncated, edited or forged. Every
paginated route takes its cursor through a dependency of this module, so each one is checked
once, before the route runs, and a bad one is the same ``422`` validation problem everywhere
(``malformed cursor``, field ``cursor``) instead of reaching the database.

- :data:`Position`: a cursor of ``cases.queries.encode_cursor`` naming a case's pk
  (``GET /v1/cases``), at most 2**63 - 1.
- :data:`SeqPosition`: the same kind of cursor naming a seq (events, messages), an index (a
  case's offers, evidence and information requests) or a checkpoint number, at most 2**31 - 1
  (PostgreSQL's INTEGER: a larger one would be refused by the database, as a 500).
- :data:`QueuePosition`: the mediator queue's ``"<due instant>|<case id>"``.

The dependencies are ``async def`` for the reason given in ``api/deps.py`` (no thread hop).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Query

from cases.queries import MAX_SEQ, decode_cursor
from workflow.errors import InvalidCommandError
from workflow.model import from_iso

CURSOR_DESCRIPTION = "The `next_cursor` of the previous page; absent or empty for the first page."
CursorText = Annotated[str | None, Query(max_length=40, description=CURSOR_DESCRIPTION)]
QueueCursorText = Annotated[str | None, Query(max_length=120, description=CURSOR_DESCRIPTION)]


async def position(cursor: CursorText = None) -> int | None:
    """The case pk ``cursor`` names, or None for the first page."""
    return decode_cursor(cursor) if cursor else None


async def seq_position(cursor: CursorText = None) -> int | None:
    """The seq or index ``cursor`` names, or None for the first page."""
    return decode_cursor(cursor, MAX_SEQ) if cursor else None


Position = Annotated[int | None, Depends(position)]
SeqPosition = Annotated[int | None, Depends(seq_position)]


async def queue_position(cursor: QueueCursorText = None) -> tuple[datetime, str] | None:
    """The queue's cursor: the due instant and the id of the previous page's last case."""
    if not cursor:
        return None
    due_text, separator, case_id = cursor.partition("|")
    try:
        due = from_iso(due_text)
        if not separator or due.tzinfo is None:
            raise ValueError(cursor)
        due = due.astimezone(UTC)
    except (ValueError, OverflowError):
        # OverflowError: a zone offset that moves the instant out of datetime's range.
        raise InvalidCommandError("malformed queue cursor", field="cursor") from None
    # A case id is at most 40 printable characters (the column's width); NUL, say, would be
    # refused by PostgreSQL itself, as a 500.
    if not case_id or len(case_id) > 40 or not case_id.isprintable():
        raise InvalidCommandError("malformed queue cursor", field="cursor")
    return due, case_id


QueuePosition = Annotated[tuple[datetime, str] | None, Depends(queue_position)]


ISO_INSTANT = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?)?$"


def parse_instant(text: str | None, field: str) -> datetime | None:
    """An ISO 8601 date or instant; without a zone it is taken as UTC."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidCommandError(f"{field} is not an ISO 8601 instant", field=field) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
