"""The mediator's queue: the cases they can act on (their own, the unassigned pool, and for a
senior mediator the escalations awaiting a ruling), most urgent clock first, with filters and a
count per state. The page refreshes its list every two seconds without reloading: the list
carries a fingerprint of what it shows, and the server answers 204 (nothing to swap) while the
fingerprint still holds, so a change by another person or a timer appears within the interval."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from cases.sweep import queue, queue_counts
from console.web import PageContext, page_context, render, sign_in_redirect
from workflow.model import MEDIATOR_ROLES

router = APIRouter()
Context = Annotated[PageContext, Depends(page_context)]
PRIORITIES = ("low", "normal", "high", "urgent")
# The most urgent cases, as many as the API's queue gives by default: rendering a row costs more
# than reading it (B11), and a mediator works from the top of the list.
PAGE = 50


@router.get("/queue")
def mediator_queue(
    ctx: Context,
    state: str = "",
    category: str = "",
    merchant: str = "",
    priority: str = "",
    breaching: str = "",
    seen: str = "",
    notice: str | None = None,
) -> Response:
    if ctx.actor is None:
        return sign_in_redirect(ctx)
    if ctx.actor.role not in MEDIATOR_ROLES:
        return render(ctx, "error.html", status_code=403, kind="refused", reasons=("for mediators",))
    items, _ = queue(
        ctx.engine.cases,
        actor=ctx.actor,
        limit=PAGE,
        state=state or None,
        category=category if category in ctx.engine.cases.categories else None,
        merchant_id=merchant.strip() or None,
        priority=priority if priority in PRIORITIES else None,
        breaching={"yes": True, "no": False}.get(breaching),
    )
    counts = queue_counts(ctx.engine.cases, actor=ctx.actor)
    fingerprint = hashlib.sha256(
        repr(([(i.case.id, i.case.version) for i in items], sorted(counts.items()))).encode()
    ).hexdigest()[:16]
    etag = f'"q-{fingerprint}"'
    if seen == fingerprint or ctx.request.headers.get("if-none-match") == etag:
        # Nothing changed since the list the page shows: htmx swaps nothing on 204.
        return Response(status_code=204 if seen == fingerprint else 304, headers={"ETag": etag})
    chosen = {"state": state, "category": category, "merchant": merchant, "priority": priority, "breaching": breaching}
    states = [s.name for s in ctx.engine.registry.active().states if not s.final]
    response = render(
        ctx,
        "queue.html",
        notice=notice,
        items=items,
        counts=counts,
        fingerprint=fingerprint,
        chosen=chosen,
        states=states,
        categories=ctx.engine.cases.categories.ids,
        priorities=PRIORITIES,
        zones={name: calendar.zone for name, calendar in ctx.engine.cases.calendars().items()},
        block="queue" if ctx.htmx and seen else None,
    )
    response.headers["ETag"] = etag
    return response
