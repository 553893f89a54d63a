"""cases: indexes for filing's intake, (merchant_id, created_at) and (mediator_id, closed_at, priority)

Revision ID: 0143d543fbd1
Revises: 08c0adbad2ff
Create Date: 2026-11-28 15:36:16.000000

The desk intake runs two counts on every filing. The repeat complaints against the
merchant (``merchant_id = ? AND created_at >= ?``) walked ``(merchant_id, pk)`` and read
the row of every case the merchant ever had; the router's open load per mediator
(``mediator_id IN (...) AND closed_at IS NULL``, grouped by priority) did the same over
``(mediator_id, pk)`` on SQLite, and PostgreSQL scanned the whole table. Both grew with
the history, not with the window or the open cases. These indexes answer both counts
from the index alone.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0143d543fbd1"
down_revision: str | None = "08c0adbad2ff"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_cases_merchant_created", "cases", ["merchant_id", "created_at"], unique=False)
    op.create_index("ix_cases_mediator_open", "cases", ["mediator_id", "closed_at", "priority"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_cases_mediator_open", table_name="cases")
    op.drop_index("ix_cases_merchant_created", table_name="cases")
