"""The merchant's inbox: claims against their own merchant id, nearest deadline first, and their
summary (open claims, decisions against them, response clocks breached, supervision flag)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from console.views import inbox_view
from console.web import PageContext, page_context, render, sign_in_redirect
from workflow.errors import InvalidCommandError

router = APIRouter()
Context = Annotated[PageContext, Depends(page_context)]


def _after(cursor: str | None) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    due, _, case_id = cursor.partition("|")
    try:
        return datetime.fromisoformat(due), case_id
    except ValueError:
        raise InvalidCommandError("the page cursor is malformed", field="cursor") from None


@router.get("/inbox")
def inbox(
    ctx: Context,
    state: str = "",
    category: str = "",
    cursor: str | None = None,
    notice: str | None = None,
) -> Response:
    if ctx.actor is None:
        return sign_in_redirect(ctx)
    if ctx.actor.role != "merchant":
        return render(ctx, "error.html", status_code=403, kind="merchants_only")
    states = [s.name for s in ctx.engine.registry.active().states]
    view = inbox_view(
        ctx.engine,
        ctx.actor,
        state=state or None,
        category=category if category in ctx.engine.cases.categories else None,
        after=_after(cursor),
    )
    return render(
        ctx,
        "inbox.html",
        notice=notice,
        view=view,
        states=states,
        categories=ctx.engine.cases.categories.ids,
        chosen={"state": state, "category": category},
    )
