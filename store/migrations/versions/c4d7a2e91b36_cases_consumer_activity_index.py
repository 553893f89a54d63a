"""a consumer's cases by last activity: index on cases (consumer_id, updated_at, pk) (issue #19)

Revision ID: c4d7a2e91b36
Revises: 7c1e5b9a3d42
Create Date: 2026-12-06 10:00:00.000000

The console's "My cases" lists a consumer's cases newest activity first across pages (keyset
on updated_at and pk): this index serves that walk instead of sorting all their cases.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c4d7a2e91b36"
down_revision: str | None = "7c1e5b9a3d42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_cases_consumer_updated", "cases", ["consumer_id", "updated_at", "pk"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_cases_consumer_updated", table_name="cases")
