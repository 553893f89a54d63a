"""cases.breaching: the projection says whether any clock breached or warned

Revision ID: 08c0adbad2ff
Revises: e418d792e10b
Create Date: 2026-11-28 14:51:30.000000

``GET /v1/cases?breaching=true`` used to probe the timers' partial index case by case,
newest first: linear in the cases it skipped. The case row now carries the answer,
indexed with ``pk``. Existing rows are back-filled from the timers table (the same
meaning: a timer breached, or warned and still running), through the old partial
index, which then goes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "08c0adbad2ff"
down_revision: str | None = "e418d792e10b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The predicate of the partial index ix_timers_breaching (initial schema), word for word,
# so that both planners use that index for the back-fill.
BREACHING_TIMER = "status = 'breached' OR (status = 'running' AND warned)"


def upgrade() -> None:
    # A constant default: SQLite and PostgreSQL add the column without rewriting the table.
    op.add_column("cases", sa.Column("breaching", sa.Boolean(), server_default=sa.false(), nullable=False))
    cases = sa.table("cases", sa.column("id", sa.String()), sa.column("breaching", sa.Boolean()))
    timers = sa.table("timers", sa.column("case_id", sa.String()))
    op.execute(
        cases.update()
        .where(cases.c.id.in_(sa.select(timers.c.case_id).where(sa.text(f"({BREACHING_TIMER})"))))
        .values(breaching=sa.true())
    )
    op.create_index("ix_cases_breaching_pk", "cases", ["breaching", "pk"], unique=False)
    op.drop_index("ix_timers_breaching", table_name="timers")


def downgrade() -> None:
    op.create_index(
        "ix_timers_breaching",
        "timers",
        ["case_id"],
        unique=False,
        sqlite_where=sa.text(BREACHING_TIMER),
        postgresql_where=sa.text(BREACHING_TIMER),
    )
    op.drop_index("ix_cases_breaching_pk", table_name="cases")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("breaching")
