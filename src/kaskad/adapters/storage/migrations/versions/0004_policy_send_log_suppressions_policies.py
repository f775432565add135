"""policy: send log, suppressions, policies

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 09:44:47
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import kaskad.adapters.storage.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "policies",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at", kaskad.adapters.storage.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_policies")),
    )
    op.create_table(
        "send_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("contact_id", sa.String(length=40), nullable=False),
        sa.Column("notification_id", sa.String(length=40), nullable=False),
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("topic", sa.String(length=100), nullable=True),
        sa.Column("content_key", sa.String(length=200), nullable=True),
        sa.Column("journey_id", sa.String(length=100), nullable=True),
        sa.Column("at", kaskad.adapters.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_send_log")),
    )
    with op.batch_alter_table("send_log", schema=None) as batch_op:
        batch_op.create_index("ix_send_log_at", ["at"], unique=False)
        batch_op.create_index("ix_send_log_contact_at", ["contact_id", "at"], unique=False)

    op.create_table(
        "suppressions",
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "created_at", kaskad.adapters.storage.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("address", "channel", name=op.f("pk_suppressions")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content_key", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("topic", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("journey_id", sa.String(length=100), nullable=True))
        batch_op.add_column(
            sa.Column(
                "valid_until",
                kaskad.adapters.storage.types.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column("personal", sa.Boolean(), server_default=sa.text("true"), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_column("personal")
        batch_op.drop_column("valid_until")
        batch_op.drop_column("journey_id")
        batch_op.drop_column("topic")
        batch_op.drop_column("content_key")

    op.drop_table("suppressions")
    with op.batch_alter_table("send_log", schema=None) as batch_op:
        batch_op.drop_index("ix_send_log_contact_at")
        batch_op.drop_index("ix_send_log_at")

    op.drop_table("send_log")
    op.drop_table("policies")
