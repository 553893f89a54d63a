"""`disputes outbox status|dispatch` and `disputes webhooks add|list|remove|rotate|failed|resend`:
the notification outbox and the webhook endpoints, for operators (who act as an admin)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cli.common import open_engine, out
from cli.plural import quantity
from cli.terminal import shown
from outbox import endpoints
from outbox.status import list_failed, outbox_status, resend
from runtime.dispatcher import build_dispatcher
from workflow.model import Actor

outbox_app = typer.Typer(help="The notification outbox.", no_args_is_help=True)
webhooks_app = typer.Typer(help="Webhook endpoints (signed, Standard Webhooks).", no_args_is_help=True)

OPERATOR = Actor("operator", "admin")


@outbox_app.command("status")
def status(ctx: typer.Context) -> None:
    """Depth, oldest undelivered, failed deliveries, and attempts and failures per endpoint."""
    with open_engine(ctx) as engine:
        found = outbox_status(engine.db, engine.clock.now())
    pending = ", ".join(f"{channel} {count}" for channel, count in sorted(found.pending.items())) or "none"
    out.print(
        f"outbox depth {found.depth}: {quantity(found.unfanned, 'row')} to fan out; pending deliveries: {pending}"
    )
    out.print(
        f"oldest undelivered: {found.oldest_undelivered_seconds:.0f}s; failed after the last retry: {found.failed}"
    )
    if found.endpoints:
        table = Table("endpoint", "enabled", "attempts", "failures", "pending", "failed")
        for e in found.endpoints:
            table.add_row(
                shown(e.endpoint_id),
                "yes" if e.enabled else "no",
                str(e.attempts),
                str(e.failures),
                str(e.pending),
                str(e.failed),
            )
        out.print(table)


@outbox_app.command("dispatch")
def dispatch(ctx: typer.Context) -> None:
    """One dispatcher pass: fan out, deliver everything due now (for cron-style deployments)."""
    with open_engine(ctx) as engine:
        dispatcher = build_dispatcher(engine)
        try:
            delivered = dispatcher.run_once()
        finally:
            dispatcher.close()
    out.print(f"{quantity(delivered, 'delivery', 'deliveries')} made")


@webhooks_app.command("add")
def add(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="The receiver: https, a public host (outside development).")],
    events: Annotated[str, typer.Option(help='Comma-separated event types (case.filed, ...) or "*".')] = "*",
    merchant: Annotated[str | None, typer.Option(help="Only this merchant's cases (default: every case).")] = None,
    description: Annotated[str, typer.Option(help="What the endpoint is for.")] = "",
) -> None:
    """Register an endpoint and print its signing secret (shown once)."""
    with open_engine(ctx) as engine:
        created, secret = endpoints.register(
            engine.db,
            OPERATOR,
            url=url,
            now=engine.clock.now(),
            development=engine.settings.environment != "production",
            event_types=[e.strip() for e in events.split(",")],
            merchant_id=merchant,
            description=description,
        )
    out.print(f"{created.id} {shown(created.url)} events {shown(','.join(created.event_types))}")
    out.print(f"secret {secret}")


@webhooks_app.command("list")
def list_(ctx: typer.Context) -> None:
    """Every endpoint."""
    with open_engine(ctx) as engine:
        found = endpoints.list_endpoints(engine.db, OPERATOR)
    for e in found:
        state = "enabled" if e.enabled else f"disabled ({shown(e.disabled_reason)})"
        scope = f"merchant {shown(e.merchant_id)}" if e.merchant_id else "every case"
        out.print(f"{e.id} {shown(e.url)} {scope} events {shown(','.join(e.event_types))} {state}")
    if not found:
        out.print("no webhook endpoints")


@webhooks_app.command("remove")
def remove(ctx: typer.Context, endpoint_id: str) -> None:
    with open_engine(ctx) as engine:
        endpoints.remove(engine.db, OPERATOR, endpoint_id)
    out.print(f"{shown(endpoint_id)} removed")


@webhooks_app.command("rotate")
def rotate(ctx: typer.Context, endpoint_id: str) -> None:
    """A new secret; the old one also signs for 24 hours."""
    with open_engine(ctx) as engine:
        secret = endpoints.rotate_secret(engine.db, OPERATOR, endpoint_id, engine.clock.now())
    out.print(f"secret {secret}")


@webhooks_app.command("failed")
def failed(ctx: typer.Context, endpoint_id: str) -> None:
    """Deliveries that failed after the last retry."""
    with open_engine(ctx) as engine:
        found = list_failed(engine.db, OPERATOR, endpoint_id)
    for f in found:
        out.print(
            f"{f.id} {f.case_id}#{f.seq} {f.message_id} attempts {f.attempts} "
            f"last {f.last_status} {shown(f.last_error)}"
        )
    out.print(f"{quantity(len(found), 'failed delivery', 'failed deliveries')}")


@webhooks_app.command("resend")
def resend_(ctx: typer.Context, endpoint_id: str) -> None:
    """Queue the endpoint's failed deliveries again and enable it."""
    with open_engine(ctx) as engine:
        queued = resend(engine.db, OPERATOR, endpoint_id, engine.clock.now())
    out.print(f"{quantity(queued, 'delivery', 'deliveries')} queued again")
