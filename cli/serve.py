"""`disputes serve`, `disputes worker` and `disputes sla tick`: the processes that run a desk."""

from __future__ import annotations

import os
import signal
import threading
from typing import Annotated

import typer
import uvicorn

from cases.sweep import fire_due_timers
from cli.common import database, desk_or_exit, err, open_engine, options, out, parse_instant, require_schema, settings
from cli.plural import quantity
from cli.terminal import shown
from runtime.dispatcher import DispatcherThread, build_dispatcher
from runtime.settings import get_settings
from runtime.ticker import build_ticker

sla_app = typer.Typer(help="SLA clocks.", no_args_is_help=True)


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
    access_log: Annotated[bool, typer.Option(help="Log every request (uvicorn's access log).")] = True,
    worker_healthcheck_timeout: Annotated[
        int, typer.Option(min=1, help="Seconds a worker may take to answer the supervisor before it is replaced.")
    ] = 30,
) -> None:
    """Serve the HTTP API (and, unless DISPUTES_RUN_TICKER=false, the SLA ticker).

    With --workers N, uvicorn runs N worker processes on one socket and starts a new
    one whenever a worker dies; every worker builds its own app from the settings."""
    found = settings(ctx)
    if workers > 1 and found.database_url.startswith("sqlite"):
        err.print(
            f"[red]refusing to start:[/red] --workers {workers} needs PostgreSQL; SQLite serves one process "
            "(set DISPUTES_DATABASE_URL=postgresql+psycopg://..., see docs/deploy.md)"
        )
        raise typer.Exit(2)
    require_schema(found, create_if_empty=True, refusal="refusing to start:")
    desk = desk_or_exit(ctx, found.config_dir, code=2)  # refuse to start on an unsound desk, naming every problem
    config_dir = options(ctx).config_dir
    if config_dir is not None:
        # The app (and every uvicorn worker) reads its settings from the environment, afresh.
        os.environ["DISPUTES_CONFIG_DIR"] = str(config_dir)
        get_settings.cache_clear()
    err.print(f"desk {shown(repr(desk.name))}: {desk.version}")
    err.print(f"serving on http://{host}:{port}  (docs: http://{host}:{port}/docs, database: {database(found)})")
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=access_log,
        # uvicorn's default (5 s) replaces a worker that is slow to answer while it starts
        # on a busy machine, which then starts again, forever; 30 s rides that out.
        timeout_worker_healthcheck=worker_healthcheck_timeout,
    )


def worker(
    ctx: typer.Context,
    role: Annotated[
        str,
        typer.Option(
            help="What this process runs: all (the SLA ticker and the outbox dispatcher), ticker or dispatcher."
        ),
    ] = "all",
) -> None:
    """Run the background work without the HTTP API: the SLA ticker, the outbox's dispatcher, or both
    (for deployments with separate API and worker processes; several dispatchers may run on PostgreSQL)."""
    if role not in ("all", "ticker", "dispatcher"):
        err.print(f"[red]error:[/red] --role is all, ticker or dispatcher, not {role!r}")
        raise typer.Exit(2)
    with open_engine(ctx) as engine:
        ticker = build_ticker(engine) if role in ("all", "ticker") else None
        dispatcher = (
            DispatcherThread(build_dispatcher(engine), engine.settings.dispatcher_interval_seconds)
            if role in ("all", "dispatcher")
            else None
        )
        running = [*(["ticker"] if ticker else []), *(["outbox dispatcher"] if dispatcher else [])]
        err.print(f"{' and '.join(running)} running on {database(engine.settings)}; Ctrl-C stops")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        if ticker is not None:
            ticker.start()
        if dispatcher is not None:
            dispatcher.start()
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            if ticker is not None:
                ticker.stop()
            if dispatcher is not None:
                dispatcher.stop()
    if ticker is not None:
        err.print(
            f"ticker stopped after {quantity(ticker.sweeps, 'sweep')}, {quantity(ticker.fired_total, 'timer effect')}"
        )
    if dispatcher is not None:
        stats = dispatcher.dispatcher.stats
        err.print(f"dispatcher stopped after {quantity(stats.delivered, 'delivery', 'deliveries')}")


@sla_app.command("tick")
def sla_tick(
    ctx: typer.Context,
    now: Annotated[str | None, typer.Option(help="Sweep as of this instant (ISO 8601).")] = None,
) -> None:
    """Run one sweep: fire every warning and breach due now (for cron-style deployments)."""
    with open_engine(ctx) as engine:
        instant = parse_instant(now) if now else engine.clock.now()
        fired = fire_due_timers(engine.cases, instant)
    out.print(f"{quantity(fired, 'timer effect')} applied as of {instant.isoformat()}")
