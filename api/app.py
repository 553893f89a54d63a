"""The HTTP app: the engine (runtime/bootstrap.py) behind every router, the middleware and the
problem handlers."""

from __future__ import annotations

import gc
import logging
import signal
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI

from api.auth import UnauthenticatedError, actor_from_token, mint_token
from api.deps import reject_unknown_query
from api.docs import install_docs
from api.guard import GuardMiddleware
from api.headers import HeadAsGet, SecurityHeaders
from api.metrics import Metrics, MetricsMiddleware, OutboxCollector, TickerCollector
from api.openapi import install_openapi, operation_id
from api.problems import install_problem_handlers
from api.routes import (
    actions,
    audit,
    cases,
    clocks,
    health,
    mediators,
    notifications,
    policies,
    privacy,
    reports,
    reviews,
    triage,
)
from console.app import mount_console
from console.session import ConsoleAuth, SignInRefused
from runtime.bootstrap import build_engine, reload_configuration
from runtime.dispatcher import DispatcherThread, build_dispatcher
from runtime.engine import Engine
from runtime.settings import Settings, get_settings
from runtime.ticker import build_ticker
from sla.clock import SystemClock
from workflow.model import Actor

log = logging.getLogger("disputes")

DESCRIPTION = """\
Case-management engine for dispute mediation: consumers file complaints against
merchants, merchants respond, mediators move cases to a settlement, senior
mediators rule on escalations, auditors verify every case's history.

Every case carries an `ETag` (its version); changing a case needs `If-Match`.
Every POST may carry an `Idempotency-Key`. Errors are `application/problem+json`
(RFC 9457), one `Problem` schema with a stable `type`. Every GET also answers HEAD.
"""

TAGS = [
    {"name": "cases", "description": "Filing, reading and moving cases."},
    {"name": "consumer", "description": "What consumers do."},
    {"name": "merchant", "description": "What merchants do."},
    {"name": "mediator", "description": "What mediators do."},
    {"name": "clocks", "description": "SLA clocks and the urgency queue."},
    {"name": "configuration", "description": "Policies and configuration (auditors, admins)."},
    {"name": "auditor", "description": "Replay, verification, signed checkpoints, proofs, export."},
    {"name": "reports", "description": "Merchant supervision, hotspots, SLA and satisfaction (auditors, admins)."},
    {"name": "webhooks", "description": "Signed webhooks for integrators (admins; merchants for their own cases)."},
    {"name": "notifications", "description": "Your notification inbox and how you want to be told."},
    {"name": "operations", "description": "Health and metrics."},
]


def _install_reload_signal(app: FastAPI) -> None:
    """SIGHUP reloads the whole desk (main thread only; uvicorn workers each get theirs)."""
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        signal.signal(signal.SIGHUP, lambda *_: reload_configuration(app.state.engine))
    except (ValueError, AttributeError):  # not the main interpreter thread, or no SIGHUP here
        pass


def _freeze_startup_heap() -> None:
    """Take everything built at start-up out of the cyclic garbage collector's sight.

    The app, the parsed policies, the desk, SQLAlchemy's metadata and the imported modules
    are over a hundred thousand tracked objects that live as long as the process. Every full
    (generation 2) collection walked them all, every request in flight stalled meanwhile
    (bench/results.md has the figures). Frozen, a full collection walks only what requests
    left behind. Objects still reach zero references and are freed as
    usual; only cycles among frozen objects are never collected, and start-up leaves no
    garbage worth that walk.
    """
    gc.collect()
    gc.freeze()


class DisputesAPI(FastAPI):
    """FastAPI with :mod:`api.headers` around everything, Starlette's error middleware
    included: an unexpected error's 500 carries the security headers too, and HEAD is
    answered on every GET route."""

    def build_middleware_stack(self) -> Any:
        return SecurityHeaders(HeadAsGet(super().build_middleware_stack()))


def _console_auth(settings: Settings) -> ConsoleAuth:
    """The console signs people in with exactly the tokens the API accepts; in demo mode it
    mints the demo users' tokens itself."""

    def verify(token: str) -> Actor:
        try:
            return actor_from_token(token, settings)
        except UnauthenticatedError as refused:
            raise SignInRefused(refused.detail or "the token is not accepted") from None

    def mint_demo(sub: str, role: str, merchant_id: str | None) -> str:
        return mint_token(settings, sub=sub, role=role, merchant_id=merchant_id, now=SystemClock().now())

    return ConsoleAuth(
        verify=verify,
        secret=settings.jwt_secret.encode(),
        mint_demo=mint_demo if settings.demo and settings.jwt_algorithm == "HS256" else None,
    )


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    freeze_heap: bool = False,
) -> FastAPI:
    """The API over ``engine`` (default: one built from ``settings`` at start-up, and disposed at
    shut-down). ``freeze_heap`` is for a served process (``api.main``), not for tests that build
    many apps in one interpreter: see ``_freeze_startup_heap``."""
    settings = engine.settings if engine is not None else settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if getattr(app.state, "engine", None) is None:
            app.state.engine = build_engine(settings)
        running: Engine = app.state.engine
        running.signing_key  # noqa: B018 - loaded (or generated) at start-up, not on the first audit request
        ticker = build_ticker(running) if settings.run_ticker else None
        if ticker is not None:
            ticker.start()  # sweeps once at once: overdue timers fire on start-up
        app.state.ticker = ticker
        dispatcher = (
            DispatcherThread(build_dispatcher(running), settings.dispatcher_interval_seconds)
            if settings.run_dispatcher
            else None
        )
        if dispatcher is not None:
            dispatcher.start()
        app.state.dispatcher = dispatcher
        triage = running.cases.triage
        if settings.warm_triage and triage is not None and triage.learned is not None:
            threading.Thread(target=triage.warm, name="triage-warm", daemon=True).start()
        _install_reload_signal(app)
        if freeze_heap:
            _freeze_startup_heap()
        yield
        if ticker is not None:
            ticker.stop()
        if dispatcher is not None:
            dispatcher.stop()
        if owns_engine:
            running.dispose()

    owns_engine = engine is None
    app = DisputesAPI(
        title="dispute-engine",
        version="0.1.0",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        docs_url=None,  # api.docs serves /docs and /redoc from vendored assets
        redoc_url=None,
        lifespan=lifespan,
        dependencies=[Depends(reject_unknown_query)],
        generate_unique_id_function=operation_id,
    )
    app.state.settings = settings
    app.state.engine = engine
    metrics = Metrics()
    metrics.registry.register(TickerCollector(lambda: getattr(app.state, "ticker", None)))
    metrics.registry.register(OutboxCollector(lambda: getattr(app.state, "engine", None)))
    app.state.metrics_registry = metrics.registry
    install_problem_handlers(app)
    install_openapi(app)
    install_docs(app)
    app.include_router(health.router)
    app.include_router(cases.router)
    app.include_router(actions.router)
    app.include_router(clocks.router)
    app.include_router(policies.router)
    app.include_router(audit.router)
    app.include_router(reports.router)
    app.include_router(mediators.router)
    app.include_router(privacy.router)
    app.include_router(notifications.webhooks)
    app.include_router(notifications.notices)
    app.include_router(reviews.router)
    app.include_router(triage.router)
    mount_console(app, _console_auth(settings), demo=settings.demo)
    app.add_middleware(
        GuardMiddleware,
        settings=settings,
        get_db=lambda: app.state.engine.db,
        clock=lambda: app.state.engine.clock,
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: counts every answer
    return app
