"""notifications: the transactional outbox, deliveries and their attempts, webhook endpoints,
inbox notices and contacts (issue #21)

Revision ID: 9325d06b7615
Revises: 6e7cfac4de84
Create Date: 2026-12-06 07:00:00.000000

``outbox`` rows are written in the command's transaction; the dispatcher fans them out into
``deliveries`` (webhooks, e-mails, reminders; every attempt in ``delivery_attempts``) and
``notices`` (the inbox). ``contacts`` holds personal data (e-mail address, language) in a
table of its own, keyed by recipient, so erasure deletes one row.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9325d06b7615"
down_revision: str | None = "6e7cfac4de84"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("case_id", sa.String(length=40), nullable=False),
        sa.Column("first_seq", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("planned", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fanned_out", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("pk"),
    )
    op.create_index("ix_outbox_pending", "outbox", ["fanned_out", "pk"], unique=False)
    op.create_table(
        "deliveries",
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("target", sa.String(length=140), nullable=False),
        sa.Column("case_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=120), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=400), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("channel", "target", "message_id", name="uq_deliveries_message"),
    )
    op.create_index("ix_deliveries_due", "deliveries", ["status", "due_at"], unique=False)
    op.create_index("ix_deliveries_line", "deliveries", ["channel", "target", "case_id", "status", "seq"], unique=False)
    op.create_table(
        "delivery_attempts",
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("delivery_pk", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=400), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("pk"),
    )
    op.create_index("ix_delivery_attempts_delivery", "delivery_attempts", ["delivery_pk"], unique=False)
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("description", sa.String(length=400), nullable=False),
        sa.Column("owner_id", sa.String(length=100), nullable=False),
        sa.Column("merchant_id", sa.String(length=100), nullable=True),
        sa.Column("event_types", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("previous_secret", sa.String(length=100), nullable=True),
        sa.Column("previous_secret_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.String(length=400), nullable=False),
        sa.Column("slow_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_webhook_endpoints_merchant_id", "webhook_endpoints", ["merchant_id"], unique=False)
    op.create_table(
        "notices",
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("recipient", sa.String(length=140), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("case_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("recipient", "kind", "case_id", "seq", name="uq_notices_once"),
    )
    op.create_index("ix_notices_recipient", "notices", ["recipient", "pk"], unique=False)
    op.create_index("ix_notices_unread", "notices", ["recipient", "read_at"], unique=False)
    op.create_table(
        "contacts",
        sa.Column("recipient", sa.String(length=140), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("language", sa.String(length=10), nullable=False),
        sa.Column("email_kinds", sa.String(length=1000), nullable=False),
        sa.Column("digest", sa.Boolean(), nullable=False),
        sa.Column("last_digest_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("recipient"),
    )


def downgrade() -> None:
    op.drop_table("contacts")
    op.drop_index("ix_notices_unread", table_name="notices")
    op.drop_index("ix_notices_recipient", table_name="notices")
    op.drop_table("notices")
    op.drop_index("ix_webhook_endpoints_merchant_id", table_name="webhook_endpoints")
    op.drop_table("webhook_endpoints")
    op.drop_index("ix_delivery_attempts_delivery", table_name="delivery_attempts")
    op.drop_table("delivery_attempts")
    op.drop_index("ix_deliveries_line", table_name="deliveries")
    op.drop_index("ix_deliveries_due", table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_index("ix_outbox_pending", table_name="outbox")
    op.drop_table("outbox")
