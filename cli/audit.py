"""`disputes replay` and `disputes audit ...`: replay, verify, export, checkpoint, what-if."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from audit.checkpoints import write_checkpoint
from audit.export import export_jsonl
from audit.keys import public_key_hex
from audit.privacy import count_erasures, verify_erasures
from audit.replay import read_replay
from audit.verify import VerifyReport, verify_database
from audit.whatif import what_if_cases
from cli.common import desk_or_exit, err, identifier, open_engine, out, parse_instant, progress
from cli.plural import quantity
from cli.terminal import plain, shown
from policies.cedar import load_policy_dir
from sla.planner import SlaPlanner
from workflow.definition import load_definition_file

audit_app = typer.Typer(help="Verify and export case histories.", no_args_is_help=True)
CaseOption = Annotated[str | None, typer.Option("--case", help="Only this case.", callback=identifier)]


def replay(
    ctx: typer.Context,
    case_id: Annotated[str, typer.Argument(help="Case id.", callback=identifier)],
    seq: Annotated[int | None, typer.Option(min=1, help="Replay up to this event.")] = None,
    at: Annotated[str | None, typer.Option(help="Replay up to this instant (ISO 8601).")] = None,
) -> None:
    """Print a case as it stood at a seq or an instant, with its history to that point."""
    with open_engine(ctx) as engine:
        replayed = read_replay(engine.db, engine.registry, case_id, seq=seq, at=parse_instant(at) if at else None)
        # The log holds markers and pseudonyms; shown with their values, or [erased].
        result = engine.cases.reveal(replayed)
    s = result.snapshot
    out.print(
        f"[bold]{shown(s.id)}[/bold]  state [bold]{shown(s.state)}[/bold]  version {s.version}  "
        f"consumer {shown(s.consumer_id)}  merchant {shown(s.merchant_id)}  mediator {shown(s.mediator_id or '-')}"
    )
    out.print(
        f"claim {s.claim_amount / 100:.2f} {shown(s.currency)}  outcome {shown(s.outcome or '-')}  "
        f"awarded {'-' if s.awarded_amount is None else f'{s.awarded_amount / 100:.2f}'}"
    )
    table = Table("seq", "at", "actor", "type", "detail", "hash")
    for e in result.events:
        if e.type == "transitioned":
            detail = f"{e.data['trigger']}: {e.data['from']} -> {e.data['to']}"
        else:
            detail = ", ".join(f"{k}={v}" for k, v in e.data.items() if k not in ("description",))[:70]
        cells = (e.seq, e.at[:19], f"{e.actor_role}:{e.actor_id}", e.type, detail, e.hash[:12])
        table.add_row(*(plain(cell) for cell in cells))
    out.print(table)


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    case: CaseOption = None,
    since: Annotated[str | None, typer.Option(help="Only cases changed since this instant.")] = None,
    chain_only: Annotated[
        bool,
        typer.Option(
            "--chain-only",
            help="Hashes, links and checkpoints only: no replay against the projection (about ten times faster).",
        ),
    ] = False,
    erasure: Annotated[
        bool,
        typer.Option(
            "--erasure",
            help="Also prove every erasure the log records: no value row and no live key for any erased ref.",
        ),
    ] = False,
) -> None:
    """Check every hash chain, replay every case against its projection, and check every
    signed checkpoint. Exits 1 naming each damaged case, its first bad seq and the kind."""
    with open_engine(ctx) as engine, progress() as bar:
        trusted = list(engine.settings.audit_trusted_keys) or [public_key_hex(engine.signing_key)]
        task = bar.add_task("verifying cases", total=None)

        def on_page(report: VerifyReport) -> None:
            bar.update(task, completed=report.cases_checked, total=report.cases_total)

        report = verify_database(
            engine.db,
            engine.registry,
            case_id=case,
            since=parse_instant(since) if since else None,
            trusted_keys=trusted,
            progress=on_page,
            replay=not chain_only,
            on_finding=lambda finding: err.print(f"[red]DAMAGED[/red] {shown(finding)}", soft_wrap=True),
        )
        erasure_problems = verify_erasures(engine.db) if erasure else []
        erasures = count_erasures(engine.db) if erasure else 0
    for problem in erasure_problems:
        err.print(f"[red]NOT ERASED[/red] {shown(problem)}", soft_wrap=True)
    if erasure_problems:
        err.print(f"{quantity(len(erasure_problems), 'erasure problem')}")
    if not report.intact:
        err.print(
            f"{len({d.case_id for d in report.damages})} of {quantity(report.cases_checked, 'case')} damaged, "
            f"{len(report.merchant_damages)} of {quantity(report.merchants_checked, 'merchant log')} damaged, "
            f"{quantity(len(report.checkpoint_problems), 'checkpoint problem')}"
        )
        raise typer.Exit(1)
    replays = "" if chain_only else "replays equal the stored cases, "
    cases = "the 1 case" if report.cases_checked == 1 else f"all {report.cases_checked} cases"
    out.print(
        f"{cases} intact ({quantity(report.events_checked, 'event')}) and "
        f"{quantity(report.merchants_checked, 'merchant log')} "
        f"({quantity(report.merchant_events_checked, 'event')}): chains verify, {replays}"
        f"{quantity(report.checkpoints_checked, 'checkpoint')} verify"
    )
    if erasure:
        out.print(
            f"{quantity(erasures, 'erasure')} in the logs: every erased ref has no value row and no live key"
            if not erasure_problems
            else "erasures: see the problems above"
        )
    if erasure_problems:
        raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    ctx: typer.Context,
    case: CaseOption = None,
    since: Annotated[str | None, typer.Option(help="Only events since this instant.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")] = None,
    disclose: Annotated[
        bool,
        typer.Option(
            "--disclose",
            help="Add the personal values behind the markers, each with its salt (for cleared auditors only).",
        ),
    ] = False,
) -> None:
    """Write the log as JSON Lines (events with hashes, the workflow and policy documents they
    reference, checkpoints); tools/verify_export.py checks such a file without this code."""
    with open_engine(ctx) as engine:
        target = output.open("w", encoding="utf-8", newline="\n") if output else sys.stdout
        try:
            summary = export_jsonl(
                engine.db,
                target,
                now=engine.clock.now(),
                case_id=case,
                since=parse_instant(since) if since else None,
                disclose=engine.cases.privacy if disclose else None,
            )
        except BaseException:
            if output:  # an unknown case, say: nothing to export, and no half-written file left behind
                target.close()
                output.unlink()
            raise
        finally:
            if output and not target.closed:
                target.close()
    lines = summary.counts
    err.print(
        f"exported {quantity(lines.get('cases', 0), 'case')}, {quantity(lines.get('event', 0), 'event')} and "
        f"{quantity(lines.get('checkpoint', 0), 'checkpoint')} to {output or 'standard output'} "
        f"(digest {summary.digest[:16]}...)",
        soft_wrap=True,
    )


@audit_app.command("checkpoint")
def audit_checkpoint(ctx: typer.Context) -> None:
    """Write a signed checkpoint now (the ticker writes one every DISPUTES_CHECKPOINT_INTERVAL_SECONDS)."""
    with open_engine(ctx) as engine:
        written = write_checkpoint(engine.db, engine.signing_key, engine.clock.now())
    if written is None:
        err.print("another worker is writing a checkpoint right now; nothing written")
        raise typer.Exit(1)
    out.print(
        f"checkpoint #{written.number}: {quantity(written.case_count, 'case')}, "
        f"{quantity(written.event_count, 'event')}, "
        f"root {written.merkle_root[:16]}, signed by {written.public_key[:16]}"
    )


@audit_app.command("what-if")
def audit_what_if(
    ctx: typer.Context,
    workflow: Annotated[Path | None, typer.Option(help="A changed workflow file (default: the one in force).")] = None,
    policies: Annotated[
        Path | None, typer.Option(help="A changed policy directory (default: the one in force).")
    ] = None,
    desk_dir: Annotated[
        Path | None,
        typer.Option("--desk", help="A changed desk directory: its workflows, policies and calendars."),
    ] = None,
    case: CaseOption = None,
    since: Annotated[str | None, typer.Option(help="Only cases changed since this instant.")] = None,
) -> None:
    """Replay recorded cases' commands under changed rules; report what would now be refused
    or lead elsewhere. Writes nothing. The global --config names the desk in force; --desk the
    changed one."""
    desk = desk_or_exit(ctx, desk_dir, code=2) if desk_dir is not None else None
    with open_engine(ctx) as engine:
        definition = (
            load_definition_file(workflow)
            if workflow
            else desk.workflow()
            if desk is not None
            else engine.registry.active()
        )
        authorizer = (
            load_policy_dir(policies) if policies else desk.policies if desk is not None else engine.cases.authorizer
        )
        # A changed desk: each case replays under the desk's workflow of its name, and its clocks
        # are simulated on the desk's calendars (so a changed goal or holiday shows).
        workflows = {w.name: w for w in desk.workflows} if desk is not None and workflow is None else None
        planner = SlaPlanner(desk.calendars) if desk is not None else None
        ids = [case] if case else list(engine.cases.iter_case_ids(since=parse_instant(since) if since else None))
        table = Table("case", "seq", "command", "by", "recorded", "under the new rules")
        changed = commands = 0
        with progress() as bar:
            task = bar.add_task("replaying under the new rules", total=len(ids))
            reports = what_if_cases(
                engine.db,
                engine.registry,
                ids,
                workflow=definition,
                authorizer=authorizer,
                workflows=workflows,
                sla=planner,
            )
            for report in reports:
                commands += report.commands
                if report.changed:
                    changed += 1
                    for d in report.divergences:
                        cells = (report.case_id, d.seq, d.command, d.actor, d.recorded, d.now)
                        table.add_row(*(plain(cell) for cell in cells))
                bar.update(task, advance=1)
    if changed:
        out.print(table)
    out.print(
        f"{changed} of {quantity(len(ids), 'case')} would go differently ({quantity(commands, 'command')} replayed; "
        f"workflow {definition.version[:12]}, policies {authorizer.version[:12]})"
    )
