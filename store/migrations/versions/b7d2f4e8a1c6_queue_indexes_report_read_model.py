"""queue indexes and the reports' read model (issue #20's performance point)

Revision ID: b7d2f4e8a1c6
Revises: c4d7a2e91b36
Create Date: 2026-12-06 10:00:00.000000

The queue walks running timers by due instant (ix_timers_running_due) and counts a mediator's
open cases per state from an index (ix_cases_mediator_open_state).

The reports' read model (reports/readmodel.py): counters per day in the desk's zone. Every case
already in the log gets a dirty mark here, so the first refresh (the first dashboard request,
or ``disputes report rebuild`` beforehand) folds them all: the backfill.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7d2f4e8a1c6"
down_revision: str | None = "c4d7a2e91b36"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _day(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.String(length=10), nullable=False)


def _counter(name: str, kind: type[sa.types.TypeEngine] = sa.Integer) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, kind(), nullable=False)


def upgrade() -> None:
    big_pk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "report_dirty",
        sa.Column("pk", big_pk, autoincrement=True, nullable=False),
        sa.Column("case_id", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("pk"),
    )
    op.create_table(
        "report_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("calendars", sa.String(length=64), nullable=False),
        sa.Column("rebuilt_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "report_cases",
        sa.Column("case_id", sa.String(length=40), nullable=False),
        sa.Column("contribution", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("case_id"),
    )
    op.create_table(
        "report_filings",
        _day("day"),
        sa.Column("merchant_id", sa.String(length=100), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        _counter("complaints"),
        sa.PrimaryKeyConstraint("day", "merchant_id", "category"),
    )
    op.create_table(
        "report_merchants",
        _day("day"),
        sa.Column("merchant_id", sa.String(length=100), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        _counter("complaints"),
        _counter("decided"),
        _counter("decided_against"),
        _counter("settled_by_agreement"),
        _counter("settlements"),
        _counter("reopened"),
        _counter("settle_seconds_total", sa.BigInteger),
        _counter("settle_count"),
        sa.PrimaryKeyConstraint("day", "merchant_id", "category"),
    )
    op.create_table(
        "report_merchant_clocks",
        _day("day"),
        sa.Column("merchant_id", sa.String(length=100), nullable=False),
        sa.Column("clock", sa.String(length=60), nullable=False),
        _counter("runs"),
        _counter("breaches"),
        sa.PrimaryKeyConstraint("day", "merchant_id", "clock"),
    )
    op.create_table(
        "report_ratings",
        _day("day"),
        sa.Column("mediator_id", sa.String(length=100), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("party", sa.String(length=20), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        _counter("ratings"),
        sa.PrimaryKeyConstraint("day", "mediator_id", "category", "party", "score"),
    )
    op.create_table(
        "report_sla",
        _day("day"),
        sa.Column("clock", sa.String(length=60), nullable=False),
        sa.Column("mediator_id", sa.String(length=100), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("seconds", sa.BigInteger(), nullable=False),
        _counter("runs"),
        sa.PrimaryKeyConstraint("day", "clock", "mediator_id", "category", "status", "seconds"),
    )
    op.execute("INSERT INTO report_dirty (case_id) SELECT id FROM cases ORDER BY pk")
    op.create_index("ix_timers_running_due", "timers", ["status", "due_at", "case_id"], unique=False)
    op.create_index("ix_cases_mediator_open_state", "cases", ["mediator_id", "closed_at", "state"], unique=False)


def downgrade() -> None:
    for table in (
        "report_sla",
        "report_ratings",
        "report_merchant_clocks",
        "report_merchants",
        "report_filings",
        "report_cases",
        "report_state",
        "report_dirty",
    ):
        op.drop_table(table)
    op.drop_index("ix_cases_mediator_open_state", table_name="cases")
    op.drop_index("ix_timers_running_due", table_name="timers")
