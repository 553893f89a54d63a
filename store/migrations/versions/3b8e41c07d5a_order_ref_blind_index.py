"""order references as a blind index: index keys and order_refs (issues #18 and #23)

Revision ID: 3b8e41c07d5a
Revises: fbd390dcb7d6
Create Date: 2026-12-06 08:30:00.000000

With personal data protected the log holds an order reference as a marker that differs per
case, so related-case counts (``related: same_order``) match orders by a keyed hash
(HMAC-SHA256 under an index key wrapped like a case's data key). Erasing a case deletes its row.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3b8e41c07d5a"
down_revision: str | None = "fbd390dcb7d6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "index_keys",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("kek_id", sa.String(length=100), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "order_refs",
        sa.Column("case_id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=100), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("case_id"),
    )
    op.create_index("ix_order_refs_lookup", "order_refs", ["merchant_id", "token", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_order_refs_lookup", table_name="order_refs")
    op.drop_table("order_refs")
    op.drop_table("index_keys")
