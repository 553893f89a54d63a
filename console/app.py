"""The console as a sub-application mounted at ``/console``, with its own error pages and headers.

``mount_console`` is called by the HTTP app (``api/app.py``), which passes the API's own token
verification (so the console accepts exactly the API's tokens) and, in demo mode, a minter for
the demo identities. The console's responses carry a Content-Security-Policy without inline
scripts or styles (htmx is configured by a ``<meta>`` element to need neither), are never
framed and never cached.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from console.i18n import LANGUAGES, translations
from console.routes import case, consumer, mediator, merchant, notifications, oversight, sign_in
from console.session import ConsoleAuth
from console.web import ConsoleState, page_context, render
from runtime.engine import Engine
from workflow.errors import DisputeError, NotFoundError, PolicyDeniedError

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
CONSOLE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def environments() -> dict[str, Environment]:
    """One template environment per language, each with its catalog installed."""
    built = {}
    for language in LANGUAGES:
        environment = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(default=True, default_for_string=True),
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
        )
        environment.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
        built[language] = environment
    return built


def build_console(get_engine: Callable[[], Engine], auth: ConsoleAuth, *, demo: bool) -> FastAPI:
    console = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    console.state.console = ConsoleState(get_engine, auth, demo, environments())

    @console.middleware("http")
    async def headers(request: Request, call_next: Callable[[Request], object]) -> Response:
        response: Response = await call_next(request)  # type: ignore[misc]
        # An evidence preview brings its own sandboxing policy and may be framed by the console.
        own_policy = "Content-Security-Policy" in response.headers
        for name, value in CONSOLE_HEADERS.items():
            if name == "Cache-Control" and request.url.path.startswith("/console/static/"):
                response.headers[name] = "public, max-age=3600"
                continue
            if own_policy and name in ("Content-Security-Policy", "X-Frame-Options"):
                continue
            response.headers[name] = value
        return response

    @console.exception_handler(NotFoundError)
    async def not_found(request: Request, exc: NotFoundError) -> Response:
        return render(page_context(request), "error.html", status_code=404, kind="not_found")

    @console.exception_handler(PolicyDeniedError)
    async def refused(request: Request, exc: PolicyDeniedError) -> Response:
        return render(page_context(request), "error.html", status_code=403, kind="refused", reasons=exc.reasons)

    @console.exception_handler(DisputeError)
    async def failed(request: Request, exc: DisputeError) -> Response:
        return render(page_context(request), "error.html", status_code=409, kind="failed", reasons=(str(exc),))

    console.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (sign_in, consumer, case, merchant, mediator, oversight, notifications):
        console.include_router(module.router)
    return console


def mount_console(app: FastAPI, auth: ConsoleAuth, *, demo: bool) -> None:
    """Serve the console at ``/console`` of ``app`` (whose ``state.engine`` it uses), and send
    ``/`` there."""
    app.mount("/console", build_console(lambda: app.state.engine, auth, demo=demo))

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=303)
