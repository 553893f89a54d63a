"""personal data beside the chain: pseudonyms, case data keys, sealed values, erasures

Revision ID: 6e7cfac4de84
Revises: a5c3e9d17f20
Create Date: 2026-12-06 07:00:00.000000

Event bodies now hold a consumer's pseudonym and markers in place of personal text
(privacy/markers.py); the values live in ``personal_values``, sealed under one data key per
case (``case_keys``, wrapped by a key-encryption key). ``subjects`` maps pseudonyms to the
marketplace's user ids; ``erasures`` records every erasure asked for. No data is migrated: the
log format changed before any real data existed (docs/privacy.md).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6e7cfac4de84"
down_revision: str | None = "a5c3e9d17f20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "subjects",
        sa.Column("subject", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("subject"),
        sa.UniqueConstraint("user_id"),
    )
    op.create_table(
        "case_keys",
        sa.Column("case_id", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=40), nullable=False),
        sa.Column("kek_id", sa.String(length=100), nullable=True),
        sa.Column("wrapped", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("case_id"),
    )
    op.create_index("ix_case_keys_subject", "case_keys", ["subject"], unique=False)
    op.create_table(
        "personal_values",
        sa.Column("ref", sa.String(length=24), nullable=False),
        sa.Column("case_id", sa.String(length=40), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("ref"),
    )
    op.create_index("ix_personal_values_case_id", "personal_values", ["case_id"], unique=False)
    op.create_table(
        "erasures",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("subject", sa.String(length=40), nullable=False),
        sa.Column("basis", sa.String(length=200), nullable=False),
        sa.Column("approved_by", sa.String(length=100), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("erased", sa.Text(), nullable=False),
        sa.Column("deferred", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_erasures_requested", "erasures", ["requested_at"], unique=False)
    op.create_index("ix_erasures_subject", "erasures", ["subject"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_erasures_subject", table_name="erasures")
    op.drop_index("ix_erasures_requested", table_name="erasures")
    op.drop_table("erasures")
    op.drop_index("ix_personal_values_case_id", table_name="personal_values")
    op.drop_table("personal_values")
    op.drop_index("ix_case_keys_subject", table_name="case_keys")
    op.drop_table("case_keys")
    op.drop_table("subjects")
