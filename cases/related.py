"""Counting a new case's related cases (workflow/related.py), in the filing's transaction.

The counts are taken once, when the case is filed, and recorded on its ``filed`` event: the
policies deciding the filing and every later command read the same numbers, and replay and
what-if need no database. The merchant's cases are found by the ``(merchant_id, created_at)``
index. The order reference is matched by its blind index in ``order_refs`` when personal data
is protected (the engine built from settings always protects), else in the stored snapshot (a
LIKE on its exact JSON form).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from store.tables import CASES, ORDER_REFS
from workflow.definition import WorkflowDefinition
from workflow.model import NewCase


def related_counts(
    session: Session,
    definition: WorkflowDefinition,
    new_case: NewCase,
    now: datetime,
    *,
    order_token: str | None = None,
) -> dict[str, int]:
    """Each of the workflow's related counts for ``new_case`` filed at ``now``. With personal data
    protected the log holds the order reference as a marker (a different one per case), so
    ``order_token``, its blind index (cases/personal.py), is matched in ``order_refs`` instead."""
    counts: dict[str, int] = {}
    for spec in definition.related:
        conditions: list[ColumnElement[bool]] = [CASES.c.created_at <= now]
        if spec.window is not None:
            conditions.append(CASES.c.created_at >= now - timedelta(seconds=spec.window.wall_seconds))
        if spec.relation in ("same_order", "same_merchant", "same_consumer_and_merchant"):
            conditions.append(CASES.c.merchant_id == new_case.merchant_id)
        if spec.relation in ("same_consumer", "same_consumer_and_merchant"):
            conditions.append(CASES.c.consumer_id == new_case.consumer_id)
        if spec.relation == "same_order" and order_token is not None:
            indexed = select(ORDER_REFS.c.case_id).where(
                ORDER_REFS.c.merchant_id == new_case.merchant_id, ORDER_REFS.c.token == order_token
            )
            conditions.append(CASES.c.id.in_(indexed))
        elif spec.relation == "same_order":
            conditions.append(CASES.c.snapshot.like(_json_field("order_ref", new_case.order_ref), escape="\\"))
        counts[spec.name] = int(session.execute(select(func.count()).where(*conditions)).scalar_one())
    return counts


def _json_field(name: str, value: str) -> str:
    """A LIKE pattern matching ``"name":"value"`` in compact JSON, wildcards escaped."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace('"', '\\"')
    return f'%"{name}":"{escaped}"%'
