"""The `disputes` command line: serve, demo data, tokens, replay, audit, checks, schema."""

from __future__ import annotations

import csv
import os
import signal
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, inspect, make_url, select

from api.app import build_service, build_ticker, policy_dir, signing_key
from api.auth import TOKEN_ROLES, mint_token, parse_ttl
from api.cli_desk import config_app, config_override, desk_or_exit, scenario_app, set_config_override
from api.cli_desk import settings as configured_settings
from api.demo import DEMO_COMMANDS, create_demo
from api.plural import quantity
from api.settings import Settings, get_settings
from api.terminal import SafeConsole, plain, shown
from audit.checkpoints import write_checkpoint
from audit.export import export_jsonl
from audit.keys import public_key_hex
from audit.replay import replay
from audit.verify import VerifyReport, verify_database
from audit.whatif import what_if_case
from cases.intake import DeskIntake, IntakePaths, route_waiting, service_calendars
from cases.mediators import add_mediator, list_mediators, update_mediator
from cases.service import CaseService
from cases.timers import SlaClocks, fire_due_timers
from desk.loader import PACKAGED_WORKFLOWS, InvalidDeskError, load_workflows, part_path
from intake.classify import Classifier, load_classification
from intake.classify import summary as classification_summary
from intake.priority import load_priority
from intake.supervision import load_supervision
from policies.cedar import load_policy_dir
from policies.lint import check_policies
from reports.hotspots import hotspots_report
from reports.merchants import merchants_report
from reports.satisfaction import satisfaction_report
from reports.sla import sla_report
from reports.supervision import evaluate_merchants
from sla.clock import ManualClock, SystemClock
from store import schema
from store.db import make_engine
from store.tables import CASES
from workflow.definition import InvalidDefinitionError, Problem, WorkflowDefinition, load_definition_file
from workflow.errors import DisputeError
from workflow.model import from_iso
from workflow.text import normalise_identifier

app = typer.Typer(
    help="dispute-engine: case management for dispute mediation.", no_args_is_help=True, pretty_exceptions_enable=False
)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
audit_app = typer.Typer(help="Verify and export case histories.", no_args_is_help=True)
workflow_app = typer.Typer(help="Workflow definition files.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
app.add_typer(workflow_app, name="workflow")
sla_app = typer.Typer(help="SLA clocks.", no_args_is_help=True)
app.add_typer(sla_app, name="sla")
policies_app = typer.Typer(help="Cedar policy sets.", no_args_is_help=True)
app.add_typer(policies_app, name="policies")
report_app = typer.Typer(
    help="Merchant supervision and service-quality reports (tables, or CSV).", no_args_is_help=True
)
app.add_typer(report_app, name="report")
mediators_app = typer.Typer(help="Mediators the router assigns cases to.", no_args_is_help=True)
app.add_typer(mediators_app, name="mediators")
intake_app = typer.Typer(help="Classification, priority and supervision rule files.", no_args_is_help=True)
app.add_typer(intake_app, name="intake")
app.add_typer(config_app, name="config")
app.add_typer(scenario_app, name="scenario")

# Every value from a case, a mediator or an error is printed through shown() or plain()
# (api/terminal.py): stored text is displayed, never obeyed by the terminal or by rich.
out = SafeConsole()
err = SafeConsole(stderr=True)


def _identifier(value: str | None) -> str | None:
    """A command-line argument naming a case, a person or a merchant: the identifier rule of
    workflow/text.py (NFKC form; whitespace, controls and invisible characters refused)."""
    if value is None:
        return None
    try:
        return normalise_identifier(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.callback()
def _global_options(
    config: Annotated[
        Path | None, typer.Option("--config", help="Desk directory to run (overrides DISPUTES_CONFIG_DIR).")
    ] = None,
) -> None:
    set_config_override(config)


def _settings() -> Settings:
    """The settings in force, with the global --config applied."""
    return configured_settings()


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )


def _require_schema(settings: Settings, *, create_if_empty: bool = False, refusal: str = "") -> None:
    """Exit 2 unless the database's schema is the code's (``refusal`` prefixes the message).

    With ``create_if_empty``, an empty SQLite file (the embedded default, or a new one) first
    gets the schema, so that a newcomer's ``disputes serve`` or ``disputes demo`` just works.
    PostgreSQL, and SQLite files that hold tables, keep the explicit ``disputes db upgrade``:
    changing a schema in use is the operator's decision."""
    engine = make_engine(settings.database_url)
    try:
        if create_if_empty and engine.dialect.name == "sqlite" and not inspect(engine).get_table_names():
            schema.upgrade(engine)
            err.print(f"database schema: empty -> {schema.current_revision(engine)} (created in {_database(settings)})")
        schema.require_current(engine)
    except schema.SchemaBehindError as exc:
        err.print(f"[red]{shown(exc)}[/red]" if not refusal else f"[red]{refusal}[/red] {shown(exc)}")
        raise typer.Exit(2) from None
    finally:
        engine.dispose()


def _database(settings: Settings) -> str:
    """The database URL without its password, for messages."""
    return make_url(settings.database_url).render_as_string(hide_password=True)


def _service(settings: Settings, clock: ManualClock | None = None, *, create_schema: bool = False) -> CaseService:
    _require_schema(settings, create_if_empty=create_schema)
    try:
        return build_service(settings, clock=clock)
    except InvalidDeskError as exc:
        _print_problems(exc.problems)
        err.print(f"{quantity(len(exc.problems), 'problem')} in the desk {settings.config_dir or '(packaged default)'}")
        raise typer.Exit(2) from None


# --- server ---------------------------------------------------------------------


@app.command()
def serve(
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
    settings = _settings()
    if workers > 1 and settings.database_url.startswith("sqlite"):
        err.print(
            f"[red]refusing to start:[/red] --workers {workers} needs PostgreSQL; SQLite serves one process "
            "(set DISPUTES_DATABASE_URL=postgresql+psycopg://..., see docs/deploy.md)"
        )
        raise typer.Exit(2)
    _require_schema(settings, create_if_empty=True, refusal="refusing to start:")
    desk = desk_or_exit(settings.config_dir, code=2)  # refuse to start on an unsound desk, naming every problem
    if config_override() is not None:
        # The app (and every uvicorn worker) reads its settings from the environment, afresh.
        os.environ["DISPUTES_CONFIG_DIR"] = str(config_override())
        get_settings.cache_clear()
    err.print(f"desk {shown(repr(desk.name))}: {desk.version}")
    err.print(f"serving on http://{host}:{port}  (docs: http://{host}:{port}/docs, database: {_database(settings)})")
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


@app.command()
def worker() -> None:
    """Run only the SLA ticker (for deployments with separate API and timer processes)."""
    settings = _settings()
    service = _service(settings)
    ticker = build_ticker(service, settings, signing_key(settings))
    err.print(f"ticker running every {settings.tick_seconds:g}s on {_database(settings)}; Ctrl-C stops")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ticker.start()
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        ticker.stop()
        service.db.dispose()
        err.print(
            f"ticker stopped after {quantity(ticker.sweeps, 'sweep')}, {quantity(ticker.fired_total, 'timer effect')}"
        )


@sla_app.command("tick")
def sla_tick(now: Annotated[str | None, typer.Option(help="Sweep as of this instant (ISO 8601).")] = None) -> None:
    """Run one sweep: fire every warning and breach due now (for cron-style deployments)."""
    settings = _settings()
    service = _service(settings)
    instant = _parse_instant(now) if now else service.clock.now()
    fired = fire_due_timers(service, instant)
    service.db.dispose()
    out.print(f"{quantity(fired, 'timer effect')} applied as of {instant.isoformat()}")


# --- schema ---------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Migrate the database to the code's head (creates it if empty)."""
    settings = _settings()
    engine = make_engine(settings.database_url)
    before = schema.current_revision(engine)
    schema.upgrade(engine, revision)
    after = schema.current_revision(engine)
    engine.dispose()
    err.print(f"database schema: {before or 'empty'} -> {after}")


@db_app.command("current")
def db_current() -> None:
    """Print the database's revision and the code's head."""
    engine = make_engine(_settings().database_url)
    current, head = schema.current_revision(engine), schema.head_revision()
    engine.dispose()
    out.print(f"current: {current or 'none'}\nhead:    {head}")
    if current != head:
        raise typer.Exit(1)


# --- demo and tokens ------------------------------------------------------------


@app.command()
def demo(
    count: Annotated[int, typer.Option(min=1, max=100_000, help="How many cases to file.")] = 60,
    if_empty: Annotated[bool, typer.Option("--if-empty", help="Do nothing if cases exist.")] = False,
) -> None:
    """Load realistic demo data (merchants, mediators, cases in every state) through the service.
    An empty SQLite database gets its schema first."""
    settings = _settings()
    start = SystemClock().now() - timedelta(minutes=30 * count)
    clock = ManualClock(start)
    service = _service(settings, clock, create_schema=True)
    workflow = service.registry.active()
    missing = DEMO_COMMANDS - {*workflow.trigger_names, *workflow.action_names}
    if missing:
        err.print(
            f"demo data drives the consumer_dispute workflow; this desk's workflow {workflow.name!r} "
            f"has no {', '.join(sorted(missing))}. Nothing was filed.",
            soft_wrap=True,
        )
        service.db.dispose()
        raise typer.Exit(2)
    with service.db.read() as session:
        existing = session.execute(select(func.count()).select_from(CASES)).scalar_one()
    if if_empty and existing:
        err.print(f"demo data: {quantity(existing, 'case')} already present, nothing added")
        return
    with _progress() as progress:
        task = progress.add_task("filing demo cases", total=count)
        ids = create_demo(service, clock, count=count, progress=lambda n: progress.update(task, completed=n))
    err.print(f"demo data: {quantity(len(ids), 'case')} filed (e.g. {ids[0]})")
    service.db.dispose()


DEMO_IDENTITIES = [
    ("c-2001", "consumer", None),
    ("mu-m-1001", "merchant", "m-1001"),
    ("med-li", "mediator", None),
    ("sen-zhao", "senior_mediator", None),
    ("aud-1", "auditor", None),
    ("adm-1", "admin", None),
]


@app.command()
def token(
    sub: Annotated[str | None, typer.Option(help="Subject (user id).", callback=_identifier)] = None,
    role: Annotated[str | None, typer.Option(help=f"One of {', '.join(TOKEN_ROLES)}.")] = None,
    merchant: Annotated[str | None, typer.Option(help="Merchant id (merchant tokens).", callback=_identifier)] = None,
    ttl: Annotated[str, typer.Option(help="Lifetime, e.g. 8h, 30m, 7d.")] = "8h",
    demo_tokens: Annotated[bool, typer.Option("--demo", help="Print one token per demo role.")] = False,
) -> None:
    """Mint a development token signed with the configured HS256 secret."""
    settings = _settings()
    now = SystemClock().now()
    try:
        lifetime = parse_ttl(ttl)
        if demo_tokens:
            out.print("Demo tokens (use as: Authorization: Bearer <token>):")
            for d_sub, d_role, d_merchant in DEMO_IDENTITIES:
                value = mint_token(settings, sub=d_sub, role=d_role, merchant_id=d_merchant, now=now, ttl=lifetime)
                out.print(f"  {d_role:<16} {d_sub:<10} {value}", soft_wrap=True)
            return
        if not sub or not role:
            err.print("give --sub and --role (or --demo)")
            raise typer.Exit(2)
        out.print(mint_token(settings, sub=sub, role=role, merchant_id=merchant, now=now, ttl=lifetime), soft_wrap=True)
    except ValueError as exc:
        err.print(f"[red]{shown(exc)}[/red]")
        raise typer.Exit(2) from None


# --- replay and audit -----------------------------------------------------------


def _parse_instant(text: str) -> datetime:
    try:
        moment = from_iso(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 instant") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command("replay")
def replay_command(
    case_id: Annotated[str, typer.Argument(help="Case id.", callback=_identifier)],
    seq: Annotated[int | None, typer.Option(min=1, help="Replay up to this event.")] = None,
    at: Annotated[str | None, typer.Option(help="Replay up to this instant (ISO 8601).")] = None,
) -> None:
    """Print a case as it stood at a seq or an instant, with its history to that point."""
    service = _service(_settings())
    try:
        with service.db.read() as session:
            result = replay(session, service.registry, case_id, seq=seq, at=_parse_instant(at) if at else None)
    except DisputeError as exc:
        err.print(f"[red]{shown(exc)}[/red]")
        raise typer.Exit(1) from None
    finally:
        service.db.dispose()
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
        table.add_row(
            *(plain(cell) for cell in (e.seq, e.at[:19], f"{e.actor_role}:{e.actor_id}", e.type, detail, e.hash[:12]))
        )
    out.print(table)


@audit_app.command("verify")
def audit_verify(
    case: Annotated[str | None, typer.Option("--case", help="Only this case.", callback=_identifier)] = None,
    since: Annotated[str | None, typer.Option(help="Only cases changed since this instant.")] = None,
    chain_only: Annotated[
        bool,
        typer.Option(
            "--chain-only",
            help="Hashes, links and checkpoints only: no replay against the projection (about ten times faster).",
        ),
    ] = False,
) -> None:
    """Check every hash chain, replay every case against its projection, and check every
    signed checkpoint. Exits 1 naming each damaged case, its first bad seq and the kind."""
    settings = _settings()
    service = _service(settings)
    trusted = list(settings.audit_trusted_keys) or [public_key_hex(signing_key(settings))]
    with _progress() as progress:
        task = progress.add_task("verifying cases", total=None)

        def on_page(report: VerifyReport) -> None:
            progress.update(task, completed=report.cases_checked, total=report.cases_total)

        report = verify_database(
            service.db,
            service.registry,
            case_id=case,
            since=_parse_instant(since) if since else None,
            trusted_keys=trusted,
            progress=on_page,
            replay=not chain_only,
            on_finding=lambda finding: err.print(f"[red]DAMAGED[/red] {shown(finding)}", soft_wrap=True),
        )
    service.db.dispose()
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


@audit_app.command("export")
def audit_export(
    case: Annotated[str | None, typer.Option("--case", help="Only this case.", callback=_identifier)] = None,
    since: Annotated[str | None, typer.Option(help="Only events since this instant.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")] = None,
) -> None:
    """Write the log as JSON Lines (events with hashes, the workflow and policy documents they
    reference, checkpoints); tools/verify_export.py checks such a file without this code."""
    settings = _settings()
    service = _service(settings)
    target = output.open("w", encoding="utf-8", newline="\n") if output else sys.stdout
    try:
        summary = export_jsonl(
            service.db, target, now=service.clock.now(), case_id=case, since=_parse_instant(since) if since else None
        )
    except DisputeError as exc:  # an unknown case: nothing to export, and no half-written file left behind
        if output:
            target.close()
            output.unlink()
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    finally:
        if output and not target.closed:
            target.close()
        service.db.dispose()
    lines = summary.counts
    err.print(
        f"exported {quantity(lines.get('cases', 0), 'case')}, {quantity(lines.get('event', 0), 'event')} and "
        f"{quantity(lines.get('checkpoint', 0), 'checkpoint')} to {output or 'standard output'} "
        f"(digest {summary.digest[:16]}...)",
        soft_wrap=True,
    )


@audit_app.command("checkpoint")
def audit_checkpoint() -> None:
    """Write a signed checkpoint now (the ticker writes one every DISPUTES_CHECKPOINT_INTERVAL_SECONDS)."""
    settings = _settings()
    service = _service(settings)
    written = write_checkpoint(service.db, signing_key(settings), service.clock.now())
    service.db.dispose()
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
    workflow: Annotated[Path | None, typer.Option(help="A changed workflow file (default: the one in force).")] = None,
    policies: Annotated[
        Path | None, typer.Option(help="A changed policy directory (default: the one in force).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="A changed desk directory: its workflows, policies and calendars.")
    ] = None,
    case: Annotated[str | None, typer.Option("--case", help="Only this case.", callback=_identifier)] = None,
    since: Annotated[str | None, typer.Option(help="Only cases changed since this instant.")] = None,
) -> None:
    """Replay recorded cases' commands under changed rules; report what would now be refused
    or lead elsewhere. Writes nothing."""
    settings = _settings()
    service = _service(settings)
    desk = desk_or_exit(config, code=2) if config is not None else None
    try:
        definition = (
            load_definition_file(workflow)
            if workflow
            else desk.workflow()
            if desk is not None
            else service.registry.active()
        )
        authorizer = (
            load_policy_dir(policies) if policies else desk.policies if desk is not None else service.authorizer
        )
    except InvalidDefinitionError as exc:
        _print_problems(exc.problems)
        raise typer.Exit(2) from None
    # A changed desk: each case replays under the desk's workflow of its name, and its clocks
    # are simulated on the desk's calendars (so a changed goal or holiday shows).
    workflows = {w.name: w for w in desk.workflows} if desk is not None and workflow is None else None
    clocks = SlaClocks(desk.calendars) if desk is not None else None
    ids = [case] if case else list(service.iter_case_ids(since=_parse_instant(since) if since else None))
    table = Table("case", "seq", "command", "by", "recorded", "under the new rules")
    changed = commands = 0
    with _progress() as progress:
        task = progress.add_task("replaying under the new rules", total=len(ids))
        for case_id in ids:
            with service.db.read() as session:
                report = what_if_case(
                    session,
                    service.registry,
                    case_id,
                    workflow=definition,
                    authorizer=authorizer,
                    workflows=workflows,
                    clocks=clocks,
                )
            commands += report.commands
            if report.changed:
                changed += 1
                for d in report.divergences:
                    table.add_row(*(plain(cell) for cell in (case_id, d.seq, d.command, d.actor, d.recorded, d.now)))
            progress.update(task, advance=1)
    service.db.dispose()
    if changed:
        out.print(table)
    out.print(
        f"{changed} of {quantity(len(ids), 'case')} would go differently ({quantity(commands, 'command')} replayed; "
        f"workflow {definition.version[:12]}, policies {authorizer.version[:12]})"
    )


# --- configuration checks -------------------------------------------------------


@workflow_app.command("check")
def workflow_check(files: Annotated[list[Path], typer.Argument(help="Workflow YAML files.")]) -> None:
    """Validate workflow files; print every problem with its file and line."""
    failed = False
    for path in files:
        try:
            definition = load_definition_file(path)
        except InvalidDefinitionError as exc:
            failed = True
            _print_problems(exc.problems)
            continue
        out.print(
            f"{path}: ok  ({definition.name}, {quantity(len(definition.states), 'state')}, "
            f"{quantity(len(definition.trigger_names), 'trigger')}, version {definition.version[:12]})"
        )
    if failed:
        raise typer.Exit(1)


def _print_problems(problems: list[Problem]) -> None:
    for problem in problems:
        err.print(f"{shown(problem.file)}:{problem.line}: [red]error[/red]: {shown(problem.message)}", soft_wrap=True)


@policies_app.command("check")
def policies_check(
    directory: Annotated[Path | None, typer.Argument(help="Policy directory (default: the one in force).")] = None,
    workflows: Annotated[list[Path] | None, typer.Option("--workflow", help="Workflow files to lint against.")] = None,
) -> None:
    """Validate syntax and schema, and lint that every workflow trigger and action is reachable
    by a permit and that no permit names an action the workflows lack."""
    settings = _settings()
    target = directory or policy_dir(settings)
    try:
        definitions = [load_definition_file(w) for w in workflows] if workflows else list(_desk_workflows(settings))
    except InvalidDefinitionError as exc:
        _print_problems(exc.problems)
        raise typer.Exit(1) from None
    problems = check_policies(target, definitions)
    if problems:
        _print_problems(problems)
        err.print(f"{quantity(len(problems), 'problem')} in {target}")
        raise typer.Exit(1)
    authorizer = load_policy_dir(target)
    out.print(
        f"{target}: ok  ({quantity(len(authorizer.policies), 'policy', 'policies')}, "
        f"version {authorizer.version[:12]}, "
        f"linted against {', '.join(d.name for d in definitions)})"
    )


def _desk_workflows(settings: Settings) -> tuple[WorkflowDefinition, ...]:
    """The workflows of the configured desk (its workflows/, or the packaged ones)."""
    return load_workflows(part_path(settings.config_dir, "workflows") or PACKAGED_WORKFLOWS)


@policies_app.command("reload")
def policies_reload(
    pid: Annotated[int | None, typer.Option(help="Server process to signal (default: validate only).")] = None,
) -> None:
    """Validate the policy directory in force, then ask a running server to reload it (SIGHUP).
    A server keeps its previous set if the new one fails to load."""
    settings = _settings()
    target = policy_dir(settings)
    try:
        problems = check_policies(target, _desk_workflows(settings))
    except InvalidDefinitionError as exc:
        problems = exc.problems
    if problems:
        _print_problems(problems)
        err.print("not reloaded: the running server keeps its current policies")
        raise typer.Exit(1)
    if pid is not None:
        os.kill(pid, signal.SIGHUP)
        out.print(f"{target}: valid; sent SIGHUP to {pid}")
    else:
        out.print(f"{target}: valid (pass --pid to signal a running server, or restart it)")


# --- reports ---------------------------------------------------------------------------------

SinceOption = Annotated[str | None, typer.Option(help="Start (ISO 8601); default: 30 days before --until.")]
UntilOption = Annotated[str | None, typer.Option(help="End, exclusive (ISO 8601); default: now.")]
CsvOption = Annotated[Path | None, typer.Option("--csv", help="Also write the table to this CSV file.")]


def _period(service: CaseService, since: str | None, until: str | None) -> tuple[datetime, datetime]:
    end = _parse_instant(until) if until else service.clock.now()
    return (_parse_instant(since) if since else end - timedelta(days=30)), end


def _emit(title: str, columns: list[str], rows: list[list[object]], csv_path: Path | None) -> None:
    table = Table(*columns, title=title)
    for row in rows:
        table.add_row(*(plain(cell) for cell in row))
    out.print(table)
    if csv_path is not None:
        with csv_path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            writer.writerows(rows)
        err.print(f"wrote {quantity(len(rows), 'row')} to {csv_path}")


def _report(
    kind: str, since: str | None, until: str | None, csv_path: Path | None, merchant_id: str | None = None
) -> None:
    service = _service(_settings())
    try:
        start, end = _period(service, since, until)
        if kind == "merchants":
            assert isinstance(service.intake, DeskIntake)  # build_service installs it
            report: Any = merchants_report(
                service, service.intake.supervision, since=start, until=end, merchant_id=merchant_id
            )
        elif kind == "hotspots":
            report = hotspots_report(service, since=start, until=end)
        elif kind == "sla":
            report = sla_report(service, since=start, until=end)
        else:
            report = satisfaction_report(service, since=start, until=end)
    except DisputeError as exc:
        err.print(f"[red]{shown(exc)}[/red]")
        raise typer.Exit(2) from None
    finally:
        service.db.dispose()
    columns, rows = report.table()
    _emit(f"{kind} {start.isoformat()} .. {end.isoformat()}", columns, rows, csv_path)
    if kind == "satisfaction":
        for comment in report.comments[:20]:
            out.print(
                f"  {shown(comment['score'])}/5 {shown(comment['party'])} on {shown(comment['case_id'])} "
                f"({shown(comment['mediator_id'] or '-')}, {shown(comment['category'])}): "
                f"{shown(comment['comment'])}"
            )


@report_app.command("merchants")
def report_merchants(
    since: SinceOption = None,
    until: UntilOption = None,
    csv_path: CsvOption = None,
    merchant: Annotated[str | None, typer.Option(help="Only this merchant.", callback=_identifier)] = None,
) -> None:
    """Per merchant: complaints, response-clock breaches, decisions against it, settlements reopened,
    time to settle, and whether it is flagged for supervision."""
    _report("merchants", since, until, csv_path, merchant_id=merchant)


@report_app.command("hotspots")
def report_hotspots(since: SinceOption = None, until: UntilOption = None, csv_path: CsvOption = None) -> None:
    """Complaints per merchant and category against the previous period, biggest rise first."""
    _report("hotspots", since, until, csv_path)


@report_app.command("sla")
def report_sla(since: SinceOption = None, until: UntilOption = None, csv_path: CsvOption = None) -> None:
    """Clocks met per clock, mediator and category, with median and 90th-percentile business hours."""
    _report("sla", since, until, csv_path)


@report_app.command("satisfaction")
def report_satisfaction(since: SinceOption = None, until: UntilOption = None, csv_path: CsvOption = None) -> None:
    """Ratings by mediator, category and party, and the latest comments."""
    _report("satisfaction", since, until, csv_path)


@app.command()
def supervise() -> None:
    """Apply the supervision thresholds now: flag merchants that reach one, clear the others
    (the server does this every DISPUTES_SUPERVISION_INTERVAL_SECONDS)."""
    service = _service(_settings())
    try:
        assert isinstance(service.intake, DeskIntake)
        outcome = evaluate_merchants(service, service.intake, service.clock.now())
    finally:
        service.db.dispose()
    out.print(
        f"flagged: {shown(', '.join(outcome.raised) or '-')}; "
        f"still flagged: {shown(', '.join(outcome.kept) or '-')}; "
        f"cleared: {shown(', '.join(outcome.cleared) or '-')}; "
        f"{quantity(outcome.merchant_events, 'merchant log event')} written"
    )


# --- mediators --------------------------------------------------------------------------------


def _split_option(value: str | None) -> list[str] | None:
    return [part.strip() for part in value.split(",") if part.strip()] if value is not None else None


def _mediator_fields(
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


def _mediator_change(work: Any) -> None:
    service = _service(_settings())
    intake = service.intake
    weight = intake.priority.weight if isinstance(intake, DeskIntake) else (lambda level: 1)
    try:
        changed = service.db.run_write(
            lambda session: work(session, service_calendars(service), service.clock.now(), weight)
        )
    except DisputeError as exc:
        err.print(f"[red]{shown(exc)}[/red]")
        raise typer.Exit(2) from None
    finally:
        service.db.dispose()
    out.print(
        f"{shown(changed.id)}: {shown(changed.display_name)}, categories {shown(','.join(changed.categories))}, "
        f"languages {shown(','.join(changed.languages))}, capacity {changed.capacity}, "
        f"calendar {shown(changed.calendar)}, {'active' if changed.active else 'inactive'}"
    )


@mediators_app.command("list")
def mediators_list() -> None:
    """Every mediator with skills, capacity, duty calendar and open weighted load."""
    service = _service(_settings())
    intake = service.intake
    with service.db.read() as session:
        found = list_mediators(
            session, weight=intake.priority.weight if isinstance(intake, DeskIntake) else (lambda level: 1)
        )
    service.db.dispose()
    table = Table("id", "name", "categories", "languages", "load", "calendar", "active", "last assigned")
    for m in found:
        table.add_row(
            *(
                plain(cell)
                for cell in (
                    m.id,
                    m.display_name,
                    ",".join(m.categories),
                    ",".join(m.languages),
                    f"{m.open_load}/{m.capacity}",
                    m.calendar,
                    "yes" if m.active else "no",
                    m.last_assigned_at.isoformat() if m.last_assigned_at else "-",
                )
            )
        )
    out.print(table)


NameOption = Annotated[str | None, typer.Option("--name", help="Display name.")]
CategoriesOption = Annotated[str | None, typer.Option(help='Comma-separated categories, or "*".')]
LanguagesOption = Annotated[str | None, typer.Option(help='Comma-separated: zh, en, or "*".')]
CapacityOption = Annotated[int | None, typer.Option(min=0, max=1000, help="Most open load (a normal case is 1).")]
CalendarOption = Annotated[str | None, typer.Option(help="Duty calendar name (default: default).")]


@mediators_app.command("add")
def mediators_add(
    mediator_id: Annotated[
        str, typer.Argument(help="The mediator's user id (their token's sub).", callback=_identifier)
    ],
    name: NameOption = None,
    categories: CategoriesOption = "*",
    languages: LanguagesOption = "zh,en",
    capacity: CapacityOption = 10,
    calendar: CalendarOption = None,
) -> None:
    """Register a mediator for routing."""
    fields = _mediator_fields(name or mediator_id, categories, languages, capacity, calendar, None)
    _mediator_change(
        lambda session, calendars, now, weight: add_mediator(
            session, mediator_id=mediator_id, fields=fields, calendars=calendars, now=now, weight=weight
        )
    )


@mediators_app.command("update")
def mediators_update(
    mediator_id: Annotated[str, typer.Argument(help="The mediator's id.", callback=_identifier)],
    name: NameOption = None,
    categories: CategoriesOption = None,
    languages: LanguagesOption = None,
    capacity: CapacityOption = None,
    calendar: CalendarOption = None,
    active: Annotated[bool | None, typer.Option("--active/--inactive", help="Take part in routing.")] = None,
) -> None:
    """Change a mediator's skills, capacity, calendar or whether they take part in routing."""
    fields = _mediator_fields(name, categories, languages, capacity, calendar, active)
    if not fields:
        err.print("nothing to change: give at least one option")
        raise typer.Exit(2)
    _mediator_change(
        lambda session, calendars, now, weight: update_mediator(
            session, mediator_id=mediator_id, fields=fields, calendars=calendars, now=now, weight=weight
        )
    )


@mediators_app.command("route")
def mediators_route() -> None:
    """Route every case still waiting for a mediator now (e.g. after adding mediators)."""
    service = _service(_settings())
    try:
        assert isinstance(service.intake, DeskIntake)
        routed = route_waiting(service, service.intake)
    finally:
        service.db.dispose()
    out.print(f"{quantity(routed, 'waiting case')} assigned")


# --- intake rule files ------------------------------------------------------------------------


@intake_app.command("check")
def intake_check(
    directory: Annotated[
        Path | None,
        typer.Argument(
            help="Desk directory with intake/*.yaml (default: the configured one, else the packaged rules)."
        ),
    ] = None,
) -> None:
    """Validate the classification, priority and supervision files; print every problem with file:line."""
    paths = IntakePaths.for_directory(directory or _settings().config_dir)
    problems: list[Problem] = []
    loaded: dict[str, Any] = {}
    for name, loader, path in (
        ("classification", load_classification, paths.classification),
        ("priority", load_priority, paths.priority),
        ("supervision", load_supervision, paths.supervision),
    ):
        try:
            loaded[name] = loader(path)
        except InvalidDefinitionError as exc:
            problems.extend(exc.problems)
    if problems:
        _print_problems(problems)
        raise typer.Exit(1)
    classification = loaded["classification"]
    terms = sum(classification_summary(classification).values())
    out.print(
        f"{paths.classification}: ok ({quantity(len(classification.categories), 'category', 'categories')}, "
        f"{quantity(terms, 'term or pattern', 'terms and patterns')})"
    )
    out.print(f"{paths.priority}: ok ({quantity(len(loaded['priority'].rules), 'rule')})")
    out.print(f"{paths.supervision}: ok ({quantity(len(loaded['supervision'].thresholds), 'threshold')})")


@intake_app.command("classify")
def intake_classify(
    subject: Annotated[str, typer.Argument(help="The complaint's subject.")],
    description: Annotated[str, typer.Option(help="The complaint's description.")] = "",
    rules: Annotated[Path | None, typer.Option(help="A classification file (default: the desk's).")] = None,
) -> None:
    """Classify a complaint as filing would, and show the words and patterns that decided it."""
    path = rules or IntakePaths.for_directory(_settings().config_dir).classification
    try:
        classifier = Classifier(load_classification(path))
    except InvalidDefinitionError as exc:
        _print_problems(exc.problems)
        raise typer.Exit(1) from None
    result = classifier.classify(subject, description)
    scores = ", ".join(f"{name} {points}" for name, points in result.scores) or "-"
    out.print(
        f"category [bold]{shown(result.category)}[/bold]  score {result.score}  language {result.language}  "
        f"scores {shown(scores)}"
    )
    table = Table("rule", "kind", "term", "matched", "field", "points")
    for match in result.evidence:
        table.add_row(
            *(plain(cell) for cell in (match.rule, match.kind, match.term, match.matched, match.field, match.points))
        )
    out.print(table)
    if result.negated:
        out.print("negated: " + ", ".join(f"{shown(m.term)} ({shown(m.field)})" for m in result.negated))


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
