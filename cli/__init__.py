"""The `disputes` command line: one module per command group, joined here.

Every command that touches the database opens the engine with ``cli.common.open_engine`` and
calls the rooms' functions; none opens a session itself. The global ``--config DIR`` is kept in
Typer's context (``ctx.obj``), not in module state. Errors a user's mistake or the environment
can cause are printed as one line with an exit code by the root command (cli/errors.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli import audit, dev, mediators, outbox, reports, serve, triage  # noqa: F401  (triage: intake evaluate|retrain)
from cli.common import CliOptions
from cli.db import db_app
from cli.desk import config_app, intake_app, policies_app, workflow_app
from cli.errors import MappedErrorsGroup
from cli.privacy import privacy_app
from cli.scenario import scenario_app

app = typer.Typer(
    cls=MappedErrorsGroup,
    help="dispute-engine: case management for dispute mediation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _global_options(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", help="Desk directory to run (overrides DISPUTES_CONFIG_DIR).")
    ] = None,
) -> None:
    ctx.obj = CliOptions(config_dir=config.resolve() if config is not None else None)


app.command()(serve.serve)
app.command()(serve.worker)
app.command()(dev.demo)
app.command()(dev.token)
app.command("replay")(audit.replay)
app.command()(reports.supervise)
app.command("sample-reviews")(reports.sample_reviews)
app.add_typer(db_app, name="db")
app.add_typer(audit.audit_app, name="audit")
app.add_typer(workflow_app, name="workflow")
app.add_typer(serve.sla_app, name="sla")
app.add_typer(policies_app, name="policies")
app.add_typer(reports.report_app, name="report")
app.add_typer(mediators.mediators_app, name="mediators")
app.add_typer(intake_app, name="intake")
app.add_typer(config_app, name="config")
app.add_typer(scenario_app, name="scenario")
app.add_typer(privacy_app, name="privacy")
app.add_typer(outbox.outbox_app, name="outbox")
app.add_typer(outbox.webhooks_app, name="webhooks")


def main() -> None:  # pragma: no cover - console entry point
    """The `disputes` console script: the app, whose root command maps errors to a line and a code."""
    app()
