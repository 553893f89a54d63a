"""The notification inbox (every signed-in person: the list, mark read, their preferences) and
the webhook endpoints (admins all of them, merchants their own merchant id's: register, rotate
the secret, disable, failed deliveries and re-send).

Everything goes through the services the API uses (outbox/inbox.py, outbox/endpoints.py,
outbox/status.py), so the console refuses exactly what the API refuses: a merchant who names
another merchant's endpoint gets a 404, a consumer who opens the endpoints page a 403.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from console.web import PageContext, form_actor, page_context, render, see_other, sign_in_redirect
from notify.rules import KINDS, SYSTEM_KINDS
from outbox import endpoints, inbox
from outbox.status import list_failed, resend
from workflow.errors import InvalidCommandError, PolicyDeniedError
from workflow.model import Actor

router = APIRouter()
Context = Annotated[PageContext, Depends(page_context)]
# The event types an endpoint may ask for, offered as checkboxes ("*": every one).
EVENT_TYPES = (
    "case.filed",
    "case.transitioned",
    "case.merchant_responded",
    "case.info_requested",
    "case.info_provided",
    "case.evidence_submitted",
    "case.offer_accepted",
    "case.comment",
    "case.timer_started",
    "case.timer_warned",
    "case.timer_breached",
)
PAGE = 50


async def _form(request: Request) -> dict[str, Any]:
    """The form's fields; a field sent several times (checkboxes) as a list."""
    form = await request.form()
    values: dict[str, Any] = {}
    for name in form:
        found = [v for v in form.getlist(name) if isinstance(v, str)]
        values[name] = found if len(found) > 1 or name in ("kinds", "inbox_only", "event_types", "ids") else found[0]
    return values


FormValues = Annotated[dict[str, Any], Depends(_form)]


# --- the inbox ------------------------------------------------------------------------------------


def _inbox_page(
    ctx: PageContext,
    actor: Actor,
    *,
    unread: bool = False,
    before: int | None = None,
    notice: str | None = None,
    problem: str | None = None,
    status_code: int = 200,
) -> Response:
    found, next_pk = inbox.list_notices(
        ctx.engine.cases,
        ctx.engine.notification_rules(),
        actor,
        unread_only=unread,
        before=before,
        limit=PAGE,
        language=ctx.language,
    )
    contact = inbox.get_contact(ctx.engine.cases, actor)
    return render(
        ctx,
        "notifications.html",
        status_code=status_code,
        notice=notice,
        problem=problem,
        notices=found,
        next_pk=next_pk,
        unread_only=unread,
        contact=contact,
        # Without an address yet, the e-mail language offered is the one the page is read in.
        contact_language=contact.language if contact.email else ctx.language,
        kinds=KINDS + SYSTEM_KINDS,
        by_email=set(KINDS + SYSTEM_KINDS) if "*" in contact.email_kinds else set(contact.email_kinds),
    )


@router.get("/notifications")
def notifications(ctx: Context, unread: bool = False, before: int | None = None, notice: str | None = None) -> Response:
    if ctx.actor is None:
        return sign_in_redirect(ctx)
    return _inbox_page(ctx, ctx.actor, unread=unread, before=before, notice=notice)


@router.post("/notifications/read")
def mark_read(ctx: Context, values: FormValues) -> Response:
    """Mark one notice read (``ids``) or, without ids, all of the caller's."""
    actor = form_actor(ctx, values.get("csrf_token"))
    if isinstance(actor, Response):
        return actor
    ids_given = values.get("ids")
    ids = None
    if ids_given is not None:
        if not all(str(i).isdigit() for i in ids_given):
            return _inbox_page(ctx, actor, status_code=422, problem="the notice ids are not numbers")
        ids = [int(i) for i in ids_given]
    inbox.mark_read(ctx.engine.cases, actor, ids, ctx.engine.clock.now())
    if ctx.htmx:
        return _inbox_page(ctx, actor, notice="marked_read")
    return see_other("/console/notifications", "marked_read")


@router.post("/notifications/preferences")
def preferences(ctx: Context, values: FormValues) -> Response:
    """Which kinds by e-mail (the others only in the inbox), the address, the daily digest."""
    actor = form_actor(ctx, values.get("csrf_token"))
    if isinstance(actor, Response):
        return actor
    email = str(values.get("email", "")).strip() or None
    language = str(values.get("language", "")) or ctx.language
    try:
        inbox.set_contact(
            ctx.engine.cases,
            actor,
            email=email,
            language=language,
            email_kinds=list(values.get("kinds", [])),
            digest=values.get("digest") == "on",
            now=ctx.engine.clock.now(),
        )
    except InvalidCommandError as refused:
        return _inbox_page(ctx, actor, status_code=422, problem=str(refused))
    if ctx.htmx:
        return _inbox_page(ctx, actor, notice="preferences_saved")
    return see_other("/console/notifications", "preferences_saved")


# --- webhook endpoints ----------------------------------------------------------------------------


def _may_manage(actor: Actor) -> bool:
    return actor.role == "admin" or (actor.role == "merchant" and bool(actor.merchant_id))


def _development(ctx: PageContext) -> bool:
    """As the API: outside production, endpoints may be plain http and on this machine."""
    return ctx.engine.settings.environment != "production"


def _endpoints_page(
    ctx: PageContext,
    actor: Actor,
    *,
    notice: str | None = None,
    problem: str | None = None,
    status_code: int = 200,
    secret: str | None = None,
    secret_for: str | None = None,
    typed: dict[str, Any] | None = None,
) -> Response:
    return render(
        ctx,
        "webhooks.html",
        status_code=status_code,
        notice=notice,
        problem=problem,
        endpoints=endpoints.list_endpoints(ctx.engine.db, actor),
        event_types=EVENT_TYPES,
        secret=secret,
        secret_for=secret_for,
        typed=typed or {},
    )


def _refused(ctx: PageContext) -> Response:
    return render(ctx, "error.html", status_code=403, kind="refused", reasons=("admins and merchants only",))


def _manager(ctx: PageContext, values: dict[str, Any]) -> Actor | Response:
    """:func:`form_actor`, for an endpoint form: only admins and merchants get past it."""
    actor = form_actor(ctx, values.get("csrf_token"))
    if isinstance(actor, Response) or _may_manage(actor):
        return actor
    return _refused(ctx)


@router.get("/webhooks")
def webhooks(ctx: Context, notice: str | None = None) -> Response:
    if ctx.actor is None:
        return sign_in_redirect(ctx)
    if not _may_manage(ctx.actor):
        return _refused(ctx)
    return _endpoints_page(ctx, ctx.actor, notice=notice)


@router.post("/webhooks")
def register(ctx: Context, values: FormValues) -> Response:
    """Register an endpoint. The answer is the page itself (never a redirect): it shows the
    new ``whsec_`` secret, once; it is not kept anywhere it could be shown again."""
    actor = _manager(ctx, values)
    if isinstance(actor, Response):
        return actor
    chosen = list(values.get("event_types", [])) or ["*"]
    merchant_id = str(values.get("merchant_id", "")).strip() or None
    try:
        created, secret = endpoints.register(
            ctx.engine.db,
            actor,
            url=str(values.get("url", "")).strip(),
            now=ctx.engine.clock.now(),
            development=_development(ctx),
            event_types=chosen,
            merchant_id=merchant_id if actor.role == "admin" else actor.merchant_id,
            description=str(values.get("description", "")).strip(),
        )
    except (InvalidCommandError, PolicyDeniedError) as refused:
        code = 403 if isinstance(refused, PolicyDeniedError) else 422
        return _endpoints_page(ctx, actor, status_code=code, problem=str(refused), typed=values)
    return _endpoints_page(ctx, actor, notice="endpoint_registered", secret=secret, secret_for=created.id)


@router.post("/webhooks/{endpoint_id}/rotate")
def rotate(ctx: Context, endpoint_id: str, values: FormValues) -> Response:
    """A new secret (the old one keeps signing for a day), shown once on the page answered."""
    actor = _manager(ctx, values)
    if isinstance(actor, Response):
        return actor
    secret = endpoints.rotate_secret(ctx.engine.db, actor, endpoint_id, ctx.engine.clock.now())
    return _endpoints_page(ctx, actor, notice="secret_rotated", secret=secret, secret_for=endpoint_id)


@router.post("/webhooks/{endpoint_id}/enabled")
def set_enabled(ctx: Context, endpoint_id: str, values: FormValues) -> Response:
    """Disable an endpoint (``enabled`` absent) or enable it again (``enabled=on``)."""
    actor = _manager(ctx, values)
    if isinstance(actor, Response):
        return actor
    enabled = values.get("enabled") == "on"
    endpoints.update_endpoint(ctx.engine.db, actor, endpoint_id, development=_development(ctx), enabled=enabled)
    notice = "endpoint_enabled" if enabled else "endpoint_disabled"
    if ctx.htmx:
        return _endpoints_page(ctx, actor, notice=notice)
    return see_other("/console/webhooks", notice)


def _failed_page(ctx: PageContext, actor: Actor, endpoint_id: str, *, notice: str | None = None) -> Response:
    endpoint = endpoints.get(ctx.engine.db, actor, endpoint_id)
    return render(
        ctx,
        "webhook_failed.html",
        notice=notice,
        endpoint=endpoint,
        failed=list_failed(ctx.engine.db, actor, endpoint_id, limit=200),
    )


@router.get("/webhooks/{endpoint_id}/failed")
def failed(ctx: Context, endpoint_id: str, notice: str | None = None) -> Response:
    if ctx.actor is None:
        return sign_in_redirect(ctx)
    if not _may_manage(ctx.actor):
        return _refused(ctx)
    return _failed_page(ctx, ctx.actor, endpoint_id, notice=notice)


@router.post("/webhooks/{endpoint_id}/resend")
def resend_failed(ctx: Context, endpoint_id: str, values: FormValues) -> Response:
    """Queue the failed deliveries again (``ids``: only those) and enable the endpoint."""
    actor = _manager(ctx, values)
    if isinstance(actor, Response):
        return actor
    ids_given = values.get("ids")
    ids = [int(i) for i in ids_given if str(i).isdigit()] if ids_given is not None else None
    resend(ctx.engine.db, actor, endpoint_id, ctx.engine.clock.now(), ids)
    if ctx.htmx:
        return _failed_page(ctx, actor, endpoint_id, notice="resent")
    return see_other(f"/console/webhooks/{endpoint_id}/failed", "resent")
