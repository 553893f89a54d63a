"""Signing in and out, and the language switch."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form
from fastapi.responses import Response

from console.i18n import LANGUAGE_COOKIE, LANGUAGES
from console.session import SignInRefused, clear_session, set_session
from console.web import PageContext, page_context, render, see_other, sign_in_redirect
from runtime.demo import DEMO_IDENTITIES

router = APIRouter()
Context = Annotated[PageContext, Depends(page_context)]
ROLE_HOMES = {
    "consumer": "/console/cases",
    "merchant": "/console/inbox",
    "reviewer": "/console/reviews",
    "mediator": "/console/queue",
    "senior_mediator": "/console/queue",
}


@router.get("/")
def home(ctx: Context) -> Response:
    """Each role's first page."""
    if ctx.actor is None:
        return sign_in_redirect(ctx)
    return see_other(ROLE_HOMES.get(ctx.actor.role, "/console/cases"), ctx.request.query_params.get("notice"))


@router.get("/sign-in")
def sign_in_page(ctx: Context, notice: str | None = None) -> Response:
    demo = DEMO_IDENTITIES if ctx.state.demo and ctx.state.auth.mint_demo is not None else ()
    return render(ctx, "sign_in.html", notice=notice, demo_users=demo)


@router.post("/session")
def sign_in(
    ctx: Context,
    csrf_token: Annotated[str, Form()] = "",
    token: Annotated[str, Form()] = "",
    demo_user: Annotated[str, Form()] = "",
) -> Response:
    """Sign in with a bearer token, or in demo mode as one of the demo users."""
    if not ctx.csrf_ok(csrf_token):
        return render(ctx, "error.html", status_code=403, kind="csrf")
    minter = ctx.state.auth.mint_demo if ctx.state.demo else None
    if demo_user and minter is not None:
        identity = next((d for d in DEMO_IDENTITIES if d[0] == demo_user), None)
        if identity is None:
            return render(ctx, "sign_in.html", status_code=422, problem="unknown demo user", demo_users=DEMO_IDENTITIES)
        token = minter(*identity)
    token = token.strip()
    demo = DEMO_IDENTITIES if minter is not None else ()
    if not token:
        return render(ctx, "sign_in.html", status_code=422, problem_key="token_missing", demo_users=demo)
    try:
        ctx.state.auth.verify(token)
    except SignInRefused as refused:
        return render(ctx, "sign_in.html", status_code=401, problem=refused.detail, demo_users=demo)
    response = see_other("/console/", "signed_in")
    set_session(response, ctx.request, token)
    return response


@router.post("/session/end")
def sign_out(ctx: Context, csrf_token: Annotated[str, Form()] = "") -> Response:
    if not ctx.csrf_ok(csrf_token):
        return render(ctx, "error.html", status_code=403, kind="csrf")
    response = see_other("/console/sign-in", "signed_out")
    clear_session(response)
    return response


@router.post("/language")
def switch_language(
    ctx: Context,
    csrf_token: Annotated[str, Form()] = "",
    language: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "/console/",
) -> Response:
    """The language switch: a cookie that sticks for a year."""
    if not ctx.csrf_ok(csrf_token):
        return render(ctx, "error.html", status_code=403, kind="csrf")
    if language not in LANGUAGES:
        return render(ctx, "error.html", status_code=422, kind="failed", reasons=(f"unknown language {language!r}",))
    # Only a page of this console; anything else (another site, a scheme) goes home.
    target = back if back.startswith("/console/") and not back.startswith("//") else "/console/"
    response = see_other(target, "language")
    response.set_cookie(
        LANGUAGE_COOKIE,
        language,
        max_age=365 * 24 * 3600,
        samesite="lax",
        path="/",
        httponly=True,
        secure=ctx.request.url.scheme == "https",
    )
    return response
