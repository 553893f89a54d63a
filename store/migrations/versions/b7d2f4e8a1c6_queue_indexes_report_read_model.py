"""queue indexes and the reports' read model (issue #20's performance point)

Revision ID: b7d2f4e8a1c6
Revises: 7c1e5b9a3d42
Create Date: 2026-12-06 10:00:00.000000

The queue walks running timers by due instant (ix_timers_running_due) and counts a mediator's
open cases per state from an index (ix_cases_mediator_open_state).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "b7d2f4e8a1c6"
down_revision: str | None = "7c1e5b9a3d42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_timers_running_due", "timers", ["status", "due_at", "case_id"], unique=False)
    op.create_index("ix_cases_mediator_open_state", "cases", ["mediator_id", "closed_at", "state"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_cases_mediator_open_state", table_name="cases")
    op.drop_index("ix_timers_running_due", table_name="timers")
