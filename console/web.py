"""What every console page shares: the request's context (engine, visitor, language, formatting,
CSRF token), rendering a page or, for an htmx request, one block of it, and the answers a form
post gets.

Conventions every page follows (h20's pages too):

* A form post without ``HX-Request`` is answered ``303 See Other`` to the page to show next, with
  a ``notice`` key for the status line; with ``HX-Request`` the handler renders the page's
  ``content`` block directly, the notice swapped into the ``aria-live`` status region
  out of band. Every form therefore works without JavaScript.
* A stale version (someone changed the case since the page was read) is answered 412 with the
  fresh page, the readable notice and what the user typed still in the form: nothing is lost.
* A refused or invalid command is answered with the same page, the reason in the status line,
  the typed values kept (403/409/422).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment
from jinja2_fragments import render_block

from console.formatting import TIMEZONE_COOKIE, Formatter, zone_named
from console.i18n import LANGUAGE_COOKIE, LANGUAGE_NAMES, LANGUAGES, choose_language
from console.reasons import reasons_shown
from console.session import (
    CSRF_FIELD,
    CSRF_HEADER,
    ConsoleAuth,
    Visitor,
    csrf_token,
    csrf_valid,
    new_presession,
    set_presession,
    visitor,
)
from console.texts import shown
from console.timeline import clock_line
from outbox.inbox import unread_count
from runtime.engine import Engine
from workflow.model import Actor

# The notices a page may show in its status line, by key (their texts are in templates/notices.html).
NOTICES = frozenset(
    {
        "signed_in",
        "signed_out",
        "session_expired",
        "language",
        "filed",
        "filed_files_refused",
        "done",
        "stale",
        "evidence_added",
        "not_signed_in",
        "marked_read",
        "preferences_saved",
        "endpoint_registered",
        "secret_rotated",
        "endpoint_enabled",
        "endpoint_disabled",
        "resent",
    }
)


@dataclass
class ConsoleState:
    """The console's parts, built once by :func:`console.app.build_console`."""

    get_engine: Callable[[], Engine]
    auth: ConsoleAuth
    demo: bool
    environments: Mapping[str, Environment]


@dataclass
class PageContext:
    """One request as the pages see it."""

    request: Request
    state: ConsoleState
    engine: Engine
    visitor: Visitor
    language: str
    fmt: Formatter
    # A pre-session value drawn for this visitor (no session, no pre-session cookie yet): the
    # page's forms are bound to it and the answer sets its cookie.
    new_presession: str | None = None
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def actor(self) -> Actor | None:
        return self.visitor.actor

    @property
    def csrf(self) -> str:
        return csrf_token(self.state.auth, self.visitor.binding) if self.visitor.binding else ""

    @property
    def htmx(self) -> bool:
        return self.request.headers.get("hx-request") == "true"

    def csrf_ok(self, offered: str | None) -> bool:
        offered = offered or self.request.headers.get(CSRF_HEADER)
        return csrf_valid(self.state.auth, self.visitor.binding, offered)


def page_context(request: Request) -> PageContext:
    state: ConsoleState = request.app.state.console
    engine = state.get_engine()
    language = choose_language(request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language"))
    calendars = engine.cases.calendars()
    desk = calendars.get("default") or next(iter(calendars.values()))
    viewer_zone = zone_named(unquote(request.cookies.get(TIMEZONE_COOKIE, ""))) or desk.zone
    fmt = Formatter(language, viewer_zone, desk.zone)
    seen = visitor(request, state.auth)
    drawn = None
    if not seen.binding and not seen.from_header:
        drawn = new_presession()
        seen = replace(seen, binding=drawn)
    return PageContext(request, state, engine, seen, language, fmt, drawn)


def render(
    ctx: PageContext,
    template: str,
    *,
    status_code: int = 200,
    notice: str | None = None,
    problem: str | None = None,
    block: str | None = None,
    **values: Any,
) -> HTMLResponse:
    """The page ``template`` (or, for an htmx request, its ``content`` block; ``block`` names
    another), with the status line showing ``notice`` (a key of :data:`NOTICES`) or ``problem``
    (a reason text)."""
    environment = ctx.state.environments[ctx.language]
    notice = notice if notice in NOTICES else None
    context = {
        "ctx": ctx,
        "actor": ctx.actor,
        "fmt": ctx.fmt,
        "csrf": ctx.csrf,
        "csrf_field": CSRF_FIELD,
        "language": ctx.language,
        "languages": [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
        "notice": notice,
        "problem": problem,
        "here": ctx.request.url.path,
        "htmx": ctx.htmx,
        "demo": ctx.state.demo,
        "clock_line": lambda timer, zones, awaiting: clock_line(timer, zones, awaiting, ctx.fmt),
        "zones": {name: calendar.zone for name, calendar in ctx.engine.cases.calendars().items()},
        # The header's unread count, read only when a page with a signed-in person draws it.
        "unread_notices": lambda: unread_count(ctx.engine.cases, actor) if (actor := ctx.actor) is not None else 0,
        "shown": lambda text: shown(ctx.engine, actor, text) if (actor := ctx.actor) is not None else "",
        "policy_reasons": lambda reasons: reasons_shown(ctx.engine, ctx.language, reasons or ()),
        # The desk's categories in force: lists and titles (macros.html category_name).
        "desk_categories": ctx.engine.cases.categories,
        **values,
    }
    if ctx.htmx or block is not None:
        body = render_block(environment, template, block or "content", **context)
    else:
        body = environment.get_template(template).render(**context)
    response = HTMLResponse(body, status_code=status_code)
    if ctx.new_presession:
        set_presession(response, ctx.request, ctx.new_presession)
    return response


def see_other(url: str, notice: str | None = None, **query: str) -> RedirectResponse:
    """303 to ``url`` (a path of this site) with the status line's ``notice``."""
    params = {**query, **({"notice": notice} if notice else {})}
    return RedirectResponse(url + ("?" + urlencode(params) if params else ""), status_code=303)


def sign_in_redirect(ctx: PageContext) -> Response:
    """Where a visitor who is not signed in goes: the sign-in page (htmx: a full-page redirect)."""
    notice = "session_expired" if ctx.visitor.refused else "not_signed_in"
    if ctx.htmx:
        return Response(status_code=204, headers={"HX-Redirect": f"/console/sign-in?notice={notice}"})
    return see_other("/console/sign-in", notice)


def form_actor(ctx: PageContext, offered: str | None) -> Actor | Response:
    """The guard of every signed-in form post: the person who sent it, or the answer the post
    gets instead (the sign-in redirect when nobody is signed in, 403 when the form's CSRF token,
    ``offered`` or the header's, is not this visitor's)."""
    if ctx.actor is None:
        return sign_in_redirect(ctx)
    if not ctx.csrf_ok(offered):
        return render(ctx, "error.html", status_code=403, kind="csrf")
    return ctx.actor
