"""`disputes privacy erase|hold|release|sweep|rotate-key`: personal data (docs/privacy.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import err, identifier, open_engine, out, settings
from cli.plural import quantity
from cli.terminal import shown
from privacy.keys import rotate_key_file
from runtime.settings import default_key_file
from workflow.model import Actor

privacy_app = typer.Typer(help="Erase, hold and keep personal data.", no_args_is_help=True)

CaseArgument = Annotated[str, typer.Option("--case", help="Case id.", callback=identifier)]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why (recorded in the case's log).")]
ByOption = Annotated[str, typer.Option("--by", help="Who decides (recorded).", callback=identifier)]


@privacy_app.command("erase")
def erase(
    ctx: typer.Context,
    subject: Annotated[str, typer.Option("--subject", help="The consumer's user id at the marketplace.")],
    basis: Annotated[str, typer.Option(help="The legal basis, recorded.")] = "the data subject's request",
    approved_by: Annotated[str, typer.Option(help="Who approved, recorded.", callback=identifier)] = "operator",
) -> None:
    """Erase a consumer's personal data: closed cases now; open or held cases are deferred and
    erased by the sweep once they close and are released."""
    with open_engine(ctx) as engine:
        outcome = engine.cases.erase_subject(user_id=subject, basis=basis, approved_by=approved_by)
    out.print(
        f"erasure #{outcome.erasure_id}: {quantity(len(outcome.erased), 'case')} erased, "
        f"{quantity(len(outcome.deferred), 'case')} deferred"
    )
    for case_id, reason in sorted(outcome.deferred.items()):
        out.print(f"  deferred {shown(case_id)}: {shown(reason)}")


@privacy_app.command("hold")
def hold(ctx: typer.Context, case: CaseArgument, reason: ReasonOption, by: ByOption = "operator") -> None:
    """Set a legal hold: no erasure or retention touches the case until it is released."""
    with open_engine(ctx) as engine:
        engine.cases.set_legal_hold(actor=Actor(by, "admin"), case_id=case, reason=reason)
    out.print(f"{shown(case)}: legal hold set")


@privacy_app.command("release")
def release(ctx: typer.Context, case: CaseArgument, reason: ReasonOption, by: ByOption = "operator") -> None:
    """Release a legal hold (the next sweep carries out deferred erasures and retention)."""
    with open_engine(ctx) as engine:
        engine.cases.release_legal_hold(actor=Actor(by, "admin"), case_id=case, reason=reason)
    out.print(f"{shown(case)}: legal hold released")


@privacy_app.command("sweep")
def sweep(ctx: typer.Context) -> None:
    """Run the retention sweep now (the worker runs it on every tick): deferred erasures whose
    cases closed, and cases closed the desk's retention_years ago (desk.yaml), unless held."""
    with open_engine(ctx) as engine:
        erased = engine.cases.sweep_personal_data()
    out.print(f"{quantity(len(erased), 'case')} erased")


@privacy_app.command("rotate-key")
def rotate_key(ctx: typer.Context) -> None:
    """Add a new key-encryption key to the key file and re-wrap every live case key under it."""
    found = settings(ctx)
    path = found.key_file or default_key_file(found.database_url)
    if path is None:
        err.print("no key file to rotate: set DISPUTES_KEY_FILE (a KMS rotates its keys itself)")
        raise typer.Exit(2)
    rotated = rotate_key_file(path)
    with open_engine(ctx) as engine:
        count = engine.cases.rewrap_keys()
    out.print(f"key file {path}: new key {rotated.current}; {quantity(count, 'case key')} re-wrapped")
