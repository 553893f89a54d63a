"""The composition root: build the service from settings and mount every router."""

from __future__ import annotations

import gc
import logging
import signal
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, FastAPI

from api.deps import reject_unknown_query
from api.docs import install_docs
from api.headers import HeadAsGet, SecurityHeaders
from api.metrics import Metrics, MetricsMiddleware, TickerCollector
from api.middleware import GuardMiddleware
from api.openapi import install_openapi, operation_id
from api.problems import install_problem_handlers
from api.routes import actions, audit, cases, clocks, health, mediators, policies, reports
from api.settings import DEV_SIGNING_KEY_FILE, Settings, get_settings
from audit.checkpoints import write_checkpoint
from audit.keys import generate_signing_key, load_signing_key, private_key_pem
from cases.intake import DeskIntake, install_intake
from cases.registry import WorkflowRegistry
from cases.service import CaseService
from cases.timers import SlaClocks, fire_due_timers, reschedule_running
from desk.loader import Desk, load_desk, part_path, try_load_desk
from policies.base import AllowAllAuthorizer
from policies.cedar import DEFAULT_POLICY_DIR
from policies.store import PolicyStore
from reports.supervision import evaluate_merchants
from sla.clock import Clock, SystemClock
from sla.ticker import Ticker
from store.db import Database

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
    {"name": "operations", "description": "Health and metrics."},
]


def policy_dir(settings: Settings) -> Path:
    """The policy directory of the configured desk (the packaged one if the desk has none)."""
    return part_path(settings.config_dir, "policies") or DEFAULT_POLICY_DIR


def build_service(settings: Settings, *, clock: Clock | None = None, desk: Desk | None = None) -> CaseService:
    """The service running the configured desk (DISPUTES_CONFIG_DIR; unset: the packaged default
    desk). Raises :class:`desk.loader.InvalidDeskError` naming every problem if the desk is unsound."""
    desk = desk or load_desk(settings.config_dir)
    registry = WorkflowRegistry(list(desk.workflows), default=desk.default_workflow)
    store: PolicyStore | None = None
    if settings.allow_all:
        log.warning("DISPUTES_ALLOW_ALL is set: NO POLICIES ARE CHECKED, every request is allowed")
    else:
        store = PolicyStore(desk.policies, workflows=desk.workflows)
    service = CaseService(
        db=Database(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
        ),
        registry=registry,
        authorizer=store.current if store is not None else AllowAllAuthorizer(),
        clock=clock or SystemClock(),
        clocks=SlaClocks(desk.calendars),
    )
    service.policy_store = store
    install_intake(service, DeskIntake.of_desk(desk))
    return service


def signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The key that signs checkpoints: configured, or in development one kept in a local file
    (generated on first use), or for tests a fresh one per process."""
    if settings.audit_signing_key:
        return load_signing_key(settings.audit_signing_key)
    if settings.environment == "test":
        return generate_signing_key()
    if not DEV_SIGNING_KEY_FILE.exists():
        DEV_SIGNING_KEY_FILE.write_text(private_key_pem(generate_signing_key()), encoding="utf-8")
        DEV_SIGNING_KEY_FILE.chmod(0o600)
        log.warning("generated a development checkpoint signing key in %s", DEV_SIGNING_KEY_FILE)
    return load_signing_key(str(DEV_SIGNING_KEY_FILE))


def build_ticker(service: CaseService, settings: Settings, key: Ed25519PrivateKey) -> Ticker:
    """The ticker wired to this service: each sweep fires every due timer once and, when
    the last one is older than the interval, writes a signed checkpoint."""
    interval = timedelta(seconds=settings.checkpoint_interval_seconds)
    supervision_every = timedelta(seconds=settings.supervision_interval_seconds)
    supervised: list[datetime] = []  # when this process last evaluated the merchants

    def sweep(now: datetime) -> int:
        fired = fire_due_timers(service, now)
        write_checkpoint(service.db, key, now, min_interval=interval)
        if (
            supervision_every
            and isinstance(service.intake, DeskIntake)
            and (not supervised or now - supervised[-1] >= supervision_every)
        ):
            # Safe with several workers: each merchant's flag is decided under a lock (cases/reports.py).
            supervised[:] = [now]
            outcome = evaluate_merchants(service, service.intake, now)
            if outcome.raised or outcome.cleared:
                log.warning("merchant supervision: flagged %s, cleared %s", outcome.raised, outcome.cleared)
        return fired

    return Ticker(sweep, service.clock, settings.tick_seconds)


def reload_configuration(service: CaseService, settings: Settings) -> list[str]:
    """Reload the whole desk (SIGHUP, `disputes config reload`): every part and every
    cross-reference is validated first; on any problem the desk in force keeps serving
    unchanged and the problems are returned as text."""
    desk, problems = try_load_desk(settings.config_dir)
    if desk is None:
        for problem in problems:
            log.error("desk reload refused: %s", problem)
        return [str(p) for p in problems]
    apply_desk(service, desk)
    return []


def apply_desk(service: CaseService, desk: Desk) -> None:
    """Serve a validated desk. New cases get the new workflow versions; open cases stay pinned
    to theirs (the registry keeps every version resolvable). Policies are swapped before the
    workflows: in between, a new trigger is refused (deny by default), never wrongly allowed.
    Running clocks are rescheduled when a calendar changed."""
    now = service.clock.now()
    store = service.policy_store
    if store is not None:
        store.replace(desk.policies, workflows=desk.workflows)
        service.authorizer = store.current
        service.record_policy_version()
    service.registry.replace_active(list(desk.workflows), default=desk.default_workflow)
    with service.db.write() as session:
        service.registry.store_active(session, now)
    install_intake(service, DeskIntake.of_desk(desk))
    clocks = service.clocks
    if isinstance(clocks, SlaClocks) and clocks.calendars != desk.calendars:
        clocks.calendars = desk.calendars
        moved = reschedule_running(service, now, "calendar configuration changed")
        log.warning("calendars reloaded: %d cases' deadlines moved", moved)
    log.warning("desk %s reloaded: %s", desk.name, desk.version)


def _install_reload_signal(app: FastAPI, settings: Settings) -> None:
    """SIGHUP reloads the whole desk (main thread only; uvicorn workers each get theirs)."""
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        signal.signal(signal.SIGHUP, lambda *_: reload_configuration(app.state.service, settings))
    except (ValueError, AttributeError):  # not the main interpreter thread, or no SIGHUP here
        pass


def _freeze_startup_heap() -> None:
    """Take everything built at start-up out of the cyclic garbage collector's sight.

    The app, the parsed policies, the desk, SQLAlchemy's metadata and the imported modules
    are ~120,000 tracked objects that live as long as the process. Every full (generation 2)
    collection walked them all: 60 ms on this project's 2-core machine, every request in
    flight stalled meanwhile. Frozen, a full collection walks only what requests left
    behind (under a millisecond). Objects still reach zero references and are freed as
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


def create_app(
    settings: Settings | None = None,
    *,
    service: CaseService | None = None,
    freeze_heap: bool = False,
    **_: Any,
) -> FastAPI:
    """The API. ``freeze_heap`` is for a served process (``api.main``), not for tests that
    build many apps in one interpreter: see ``_freeze_startup_heap``."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if getattr(app.state, "service", None) is None:
            app.state.service = build_service(settings)
        if isinstance(app.state.service.authorizer, AllowAllAuthorizer):
            log.warning("authorization: allow-all (policy version %r)", app.state.service.authorizer.version)
        app.state.signing_key = signing_key(settings)
        ticker = build_ticker(app.state.service, settings, app.state.signing_key) if settings.run_ticker else None
        if ticker is not None:
            ticker.start()  # sweeps once at once: overdue timers fire on start-up
        app.state.ticker = ticker
        _install_reload_signal(app, settings)
        if freeze_heap:
            _freeze_startup_heap()
        yield
        if ticker is not None:
            ticker.stop()
        if owns_service:
            app.state.service.db.dispose()

    owns_service = service is None
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
    app.state.service = service
    metrics = Metrics()
    metrics.registry.register(TickerCollector(lambda: getattr(app.state, "ticker", None)))
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
    app.add_middleware(
        GuardMiddleware,
        settings=settings,
        get_db=lambda: app.state.service.db,
        clock=lambda: app.state.service.clock,
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: counts every answer
    return app
