"""merchant logs: a supervision flag recorded once per merchant, and checkpoints over their heads

Revision ID: a5c3e9d17f20
Revises: 0143d543fbd1
Create Date: 2026-12-02 10:00:00.000000

Raising a merchant's flag appended ``flag_raised`` to every open case of the merchant
(thousands of writes, every open case's version stale at once). The flag now lives on
the merchant's own hash-chained log: ``merchant_events`` (the chain) and ``merchants``
(its head and whether it is flagged). Checkpoints gain the merchant logs' Merkle root
(document type v2; the new columns stay NULL on the v1 checkpoints already signed),
with their changed heads in ``checkpoint_merchant_heads``.

Data: every merchant flagged now (an uncleared ``merchant_flags`` row) gets a log whose
first event raises the flag, at the instant it was raised, so the policies keep seeing
it. The ``flag_raised`` / ``flag_cleared`` events already on cases stay as they are and
still replay. The hashing rules are written out here rather than imported, so that
this revision writes the same bytes whatever the code becomes (docs/audit.md: the body
is RFC 8785 JSON, hash = sha256(previous hash bytes || body), genesis 64 zeros).
"""

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime

import rfc8785
import sqlalchemy as sa
from alembic import op

revision: str = "a5c3e9d17f20"
down_revision: str | None = "0143d543fbd1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64


def upgrade() -> None:
    op.create_table(
        "merchant_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("merchant_id", sa.String(length=100), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.String(length=100), nullable=False),
        sa.Column("actor_role", sa.String(length=30), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("merchant_id", "seq", name="uq_merchant_events_merchant_seq"),
    )
    op.create_table(
        "merchants",
        sa.Column("merchant_id", sa.String(length=100), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("merchant_id"),
    )
    op.create_table(
        "checkpoint_merchant_heads",
        sa.Column("merchant_id", sa.String(length=100), nullable=False),
        sa.Column("checkpoint", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("merchant_id", "checkpoint"),
    )
    op.create_index(
        "ix_checkpoint_merchant_heads_checkpoint",
        "checkpoint_merchant_heads",
        ["checkpoint", "merchant_id"],
        unique=False,
    )
    with op.batch_alter_table("checkpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("merchant_count", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("merchant_event_count", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("merchant_root", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("merchant_delta_count", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("merchant_delta_hash", sa.String(length=64), nullable=True))
    _log_standing_flags()


def _log_standing_flags() -> None:
    """One ``flag_raised`` event per merchant flagged now, on a new log of its own."""
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    flags = sa.table(
        "merchant_flags",
        sa.column("id", sa.Integer()),
        sa.column("merchant_id", sa.String()),
        sa.column("raised_at", sa.DateTime(timezone=True)),
        sa.column("period_start", sa.DateTime(timezone=True)),
        sa.column("period_end", sa.DateTime(timezone=True)),
        sa.column("reasons", sa.Text()),
        sa.column("rules_version", sa.String()),
        sa.column("cleared_at", sa.DateTime(timezone=True)),
    )
    events = sa.table(
        "merchant_events",
        sa.column("merchant_id", sa.String()),
        sa.column("seq", sa.Integer()),
        sa.column("type", sa.String()),
        sa.column("at", sa.DateTime(timezone=True)),
        sa.column("actor_id", sa.String()),
        sa.column("actor_role", sa.String()),
        sa.column("body", sa.Text()),
        sa.column("prev_hash", sa.String()),
        sa.column("hash", sa.String()),
    )
    merchants = sa.table(
        "merchants",
        sa.column("merchant_id", sa.String()),
        sa.column("seq", sa.Integer()),
        sa.column("head_hash", sa.String()),
        sa.column("flagged", sa.Boolean()),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    standing = bind.execute(
        sa.select(flags).where(flags.c.cleared_at.is_(None)).order_by(flags.c.merchant_id, flags.c.id)
    ).all()
    done: set[str] = set()
    for row in standing:
        if row.merchant_id in done:  # at most one uncleared flag per merchant; keep the first
            continue
        done.add(row.merchant_id)
        raised = _utc(row.raised_at)
        body = rfc8785.dumps(
            {
                "merchant_id": row.merchant_id,
                "seq": 1,
                "type": "flag_raised",
                "at": _iso(raised),
                "actor": {"id": "system", "role": "system"},
                "data": {
                    "flag": "merchant_flagged",
                    "flag_id": row.id,
                    "reasons": [r.get("message", "") for r in json.loads(row.reasons or "[]") if isinstance(r, dict)],
                    "rules_version": row.rules_version,
                    "period": {"since": _iso(_utc(row.period_start)), "until": _iso(_utc(row.period_end))},
                },
            }
        )
        digest = hashlib.sha256(bytes.fromhex(GENESIS) + body).hexdigest()
        stored = raised.replace(tzinfo=None) if sqlite else raised
        bind.execute(
            events.insert().values(
                merchant_id=row.merchant_id,
                seq=1,
                type="flag_raised",
                at=stored,
                actor_id="system",
                actor_role="system",
                body=body.decode("utf-8"),
                prev_hash=GENESIS,
                hash=digest,
            )
        )
        bind.execute(
            merchants.insert().values(
                merchant_id=row.merchant_id,
                seq=1,
                head_hash=digest,
                flagged=True,
                updated_at=stored,
            )
        )


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def downgrade() -> None:
    with op.batch_alter_table("checkpoints", schema=None) as batch_op:
        batch_op.drop_column("merchant_delta_hash")
        batch_op.drop_column("merchant_delta_count")
        batch_op.drop_column("merchant_root")
        batch_op.drop_column("merchant_event_count")
        batch_op.drop_column("merchant_count")
    op.drop_index("ix_checkpoint_merchant_heads_checkpoint", table_name="checkpoint_merchant_heads")
    op.drop_table("checkpoint_merchant_heads")
    op.drop_table("merchants")
    op.drop_table("merchant_events")
