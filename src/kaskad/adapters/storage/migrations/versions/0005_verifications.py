"""verifications: one-time codes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 14:05:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import kaskad.adapters.storage.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_PENDING = "status = 'pending'"


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _time(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(
        name, kaskad.adapters.storage.types.UTCDateTime(timezone=True), nullable=nullable
    )


def upgrade() -> None:
    op.create_table(
        "verifications",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("contact_id", sa.String(length=40), nullable=False),
        sa.Column("notification_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        _time("expires_at"),
        sa.Column("phone_key", sa.String(length=64), nullable=True),
        sa.Column("ip_key", sa.String(length=64), nullable=True),
        sa.Column("channels", _json(), nullable=False),
        sa.Column("masked", _json(), nullable=False),
        _time("created_at"),
        _time("updated_at"),
        _time("finished_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_verifications_contact_id_contacts")
        ),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name=op.f("fk_verifications_notification_id_notifications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verifications")),
    )
    with op.batch_alter_table("verifications", schema=None) as batch_op:
        batch_op.create_index("ix_verifications_contact", ["contact_id", "created_at"])
        batch_op.create_index("ix_verifications_phone", ["phone_key", "created_at"])
        batch_op.create_index("ix_verifications_ip", ["ip_key", "created_at"])
        batch_op.create_index(
            "ix_verifications_pending",
            ["expires_at"],
            unique=False,
            postgresql_where=sa.text(_PENDING),
            sqlite_where=sa.text(_PENDING),
        )


def downgrade() -> None:
    with op.batch_alter_table("verifications", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_verifications_pending",
            postgresql_where=sa.text(_PENDING),
            sqlite_where=sa.text(_PENDING),
        )
        batch_op.drop_index("ix_verifications_ip")
        batch_op.drop_index("ix_verifications_phone")
        batch_op.drop_index("ix_verifications_contact")
    op.drop_table("verifications")
