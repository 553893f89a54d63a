"""review assignments: the cases dealt to third-party reviewers, for their queues and the flags

Revision ID: fbd390dcb7d6
Revises: 9325d06b7615
Create Date: 2026-12-06 07:00:00.000000

The projection of the ``review_assigned``, ``review_submitted``, ``review_flagged`` and
``review_flag_resolved`` events (reports/review.py); the case logs stay the truth.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "fbd390dcb7d6"
down_revision: str | None = "9325d06b7615"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "review_assignments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.String(length=40), nullable=False),
        sa.Column("reviewer_id", sa.String(length=100), nullable=False),
        sa.Column("period", sa.String(length=40), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "reviewer_id", name="uq_review_assignments_case_reviewer"),
    )
    op.create_index("ix_review_assignments_reviewer", "review_assignments", ["reviewer_id", "reviewed_at"])
    op.create_index("ix_review_assignments_flagged", "review_assignments", ["flagged_at"])


def downgrade() -> None:
    op.drop_index("ix_review_assignments_flagged", table_name="review_assignments")
    op.drop_index("ix_review_assignments_reviewer", table_name="review_assignments")
    op.drop_table("review_assignments")
