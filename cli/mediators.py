"""`disputes mediators list|add|update|route`: the mediators the router assigns cases to."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer
from rich.table import Table

from cases.mediators import Mediator, change_mediator, register_mediator, registered_mediators
from cli.common import err, identifier, open_engine, out
from cli.plural import quantity
from cli.terminal import plain, shown

mediators_app = typer.Typer(help="Mediators the router assigns cases to.", no_args_is_help=True)

NameOption = Annotated[str | None, typer.Option("--name", help="Display name.")]
CategoriesOption = Annotated[str | None, typer.Option(help='Comma-separated categories, or "*".')]
LanguagesOption = Annotated[str | None, typer.Option(help='Comma-separated: zh, en, or "*".')]
CapacityOption = Annotated[int | None, typer.Option(min=0, max=1000, help="Most open load (a normal case is 1).")]
CalendarOption = Annotated[str | None, typer.Option(help="Duty calendar name (default: default).")]


def _split_option(value: str | None) -> list[str] | None:
    return [part.strip() for part in value.split(",") if part.strip()] if value is not None else None


def _fields(
    name: str | None,
    categories: str | None,
    languages: str | None,
    capacity: int | None,
    calendar: str | None,
    active: bool | None,
) -> dict[str, object]:
    given = {
        "display_name": name,
        "categories": _split_option(categories),
        "languages": _split_option(languages),
        "capacity": capacity,
        "calendar": calendar,
        "active": active,
    }
    return {key: value for key, value in given.items() if value is not None}


def _print(changed: Mediator) -> None:
    out.print(
        f"{shown(changed.id)}: {shown(changed.display_name)}, categories {shown(','.join(changed.categories))}, "
        f"languages {shown(','.join(changed.languages))}, capacity {changed.capacity}, "
        f"calendar {shown(changed.calendar)}, {'active' if changed.active else 'inactive'}"
    )


def _change(ctx: typer.Context, how: Callable[..., Mediator], mediator_id: str, fields: dict[str, object]) -> None:
    """Register or change a mediator (``how``) in a transaction of its own, and print the result."""
    with open_engine(ctx) as engine:
        changed = how(
            engine.db,
            mediator_id=mediator_id,
            fields=fields,
            calendars=engine.cases.calendars(),
            now=engine.clock.now(),
            weight=engine.cases.weight,
            categories=engine.cases.categories.ids,
        )
    _print(changed)


@mediators_app.command("list")
def mediators_list(ctx: typer.Context) -> None:
    """Every mediator with skills, capacity, duty calendar and open weighted load."""
    with open_engine(ctx) as engine:
        found = registered_mediators(engine.db, weight=engine.cases.weight)
    table = Table("id", "name", "categories", "languages", "load", "calendar", "active", "last assigned")
    for m in found:
        cells = (
            m.id,
            m.display_name,
            ",".join(m.categories),
            ",".join(m.languages),
            f"{m.open_load}/{m.capacity}",
            m.calendar,
            "yes" if m.active else "no",
            m.last_assigned_at.isoformat() if m.last_assigned_at else "-",
        )
        table.add_row(*(plain(cell) for cell in cells))
    out.print(table)


@mediators_app.command("add")
def mediators_add(
    ctx: typer.Context,
    mediator_id: Annotated[
        str, typer.Argument(help="The mediator's user id (their token's sub).", callback=identifier)
    ],
    name: NameOption = None,
    categories: CategoriesOption = "*",
    languages: LanguagesOption = "zh,en",
    capacity: CapacityOption = 10,
    calendar: CalendarOption = None,
) -> None:
    """Register a mediator for routing."""
    fields = _fields(name or mediator_id, categories, languages, capacity, calendar, None)
    _change(ctx, register_mediator, mediator_id, fields)


@mediators_app.command("update")
def mediators_update(
    ctx: typer.Context,
    mediator_id: Annotated[str, typer.Argument(help="The mediator's id.", callback=identifier)],
    name: NameOption = None,
    categories: CategoriesOption = None,
    languages: LanguagesOption = None,
    capacity: CapacityOption = None,
    calendar: CalendarOption = None,
    active: Annotated[bool | None, typer.Option("--active/--inactive", help="Take part in routing.")] = None,
) -> None:
    """Change a mediator's skills, capacity, calendar or whether they take part in routing."""
    fields = _fields(name, categories, languages, capacity, calendar, active)
    if not fields:
        err.print("nothing to change: give at least one option")
        raise typer.Exit(2)
    _change(ctx, change_mediator, mediator_id, fields)


@mediators_app.command("route")
def mediators_route(ctx: typer.Context) -> None:
    """Route every case still waiting for a mediator now (e.g. after adding mediators)."""
    with open_engine(ctx) as engine:
        routed = engine.cases.route_waiting()
    out.print(f"{quantity(routed, 'waiting case')} assigned")
