"""`disputes demo` and `disputes token`: demo data and development tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from api.auth import TOKEN_ROLES, mint_token, parse_ttl
from cli.common import err, identifier, open_engine, out, progress, settings
from cli.demo_data import DEMO_COMMANDS, create_demo
from cli.plural import quantity
from cli.terminal import shown
from runtime.demo import DEMO_IDENTITIES
from sla.clock import ManualClock, SystemClock


def demo(
    ctx: typer.Context,
    count: Annotated[int, typer.Option(min=1, max=100_000, help="How many cases to file.")] = 60,
    if_empty: Annotated[bool, typer.Option("--if-empty", help="Do nothing if cases exist.")] = False,
) -> None:
    """Load realistic demo data (merchants, mediators, cases in every state) through the service.
    An empty SQLite database gets its schema first."""
    start = SystemClock().now() - timedelta(minutes=30 * count)
    clock = ManualClock(start)
    with open_engine(ctx, clock=clock, create_schema=True) as engine:
        workflow = engine.registry.active()
        missing = DEMO_COMMANDS - {*workflow.trigger_names, *workflow.action_names}
        if missing:
            err.print(
                f"demo data drives the consumer_dispute workflow; this desk's workflow {workflow.name!r} "
                f"has no {', '.join(sorted(missing))}. Nothing was filed.",
                soft_wrap=True,
            )
            raise typer.Exit(2)
        existing = engine.cases.count_cases()
        if if_empty and existing:
            err.print(f"demo data: {quantity(existing, 'case')} already present, nothing added")
            return
        with progress() as bar:
            task = bar.add_task("filing demo cases", total=count)
            ids = create_demo(engine.cases, clock, count=count, progress=lambda n: bar.update(task, completed=n))
    err.print(f"demo data: {quantity(len(ids), 'case')} filed (e.g. {ids[0]})")


def token(
    ctx: typer.Context,
    sub: Annotated[str | None, typer.Option(help="Subject (user id).", callback=identifier)] = None,
    role: Annotated[str | None, typer.Option(help=f"One of {', '.join(TOKEN_ROLES)}.")] = None,
    merchant: Annotated[str | None, typer.Option(help="Merchant id (merchant tokens).", callback=identifier)] = None,
    ttl: Annotated[str, typer.Option(help="Lifetime, e.g. 8h, 30m, 7d.")] = "8h",
    demo_tokens: Annotated[bool, typer.Option("--demo", help="Print one token per demo role.")] = False,
) -> None:
    """Mint a development token signed with the configured HS256 secret."""
    found = settings(ctx)
    now = SystemClock().now()
    try:
        lifetime = parse_ttl(ttl)
        if demo_tokens:
            out.print("Demo tokens (use as: Authorization: Bearer <token>):")
            for d_sub, d_role, d_merchant in DEMO_IDENTITIES:
                value = mint_token(found, sub=d_sub, role=d_role, merchant_id=d_merchant, now=now, ttl=lifetime)
                out.print(f"  {d_role:<16} {d_sub:<10} {value}", soft_wrap=True)
            return
        if not sub or not role:
            err.print("give --sub and --role (or --demo)")
            raise typer.Exit(2)
        out.print(mint_token(found, sub=sub, role=role, merchant_id=merchant, now=now, ttl=lifetime), soft_wrap=True)
    except ValueError as exc:
        err.print(f"[red]{shown(exc)}[/red]")
        raise typer.Exit(2) from None
