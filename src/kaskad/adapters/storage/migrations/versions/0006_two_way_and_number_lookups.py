"""two-way replies tied to the message they answer; number lookups (HLR/MNP) cached

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 14:40:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import kaskad.adapters.storage.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _time(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(
        name, kaskad.adapters.storage.types.UTCDateTime(timezone=True), nullable=nullable
    )


def upgrade() -> None:
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        # Our message this answers (a reply's context, the call a key was pressed on).
        batch_op.add_column(sa.Column("message_id", sa.String(length=40), nullable=True))
        # What kaskad read in it: text, keyword, rating, keypress.
        batch_op.add_column(sa.Column("kind", sa.String(length=20), nullable=True))
    op.create_table(
        "number_lookups",
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("provider", sa.String(length=50), nullable=False),
        # live, dead, unknown
        sa.Column("status", sa.String(length=20), nullable=False),
        # MCC+MNC of the network serving the number now, and of the one it was issued by.
        sa.Column("network", sa.String(length=10), nullable=True),
        sa.Column("network_name", sa.String(length=100), nullable=True),
        sa.Column("original_network", sa.String(length=10), nullable=True),
        sa.Column("ported", sa.Boolean(), nullable=False),
        sa.Column("details", _json(), nullable=False),
        _time("checked_at"),
        _time("expires_at"),
        sa.PrimaryKeyConstraint("phone", name=op.f("pk_number_lookups")),
    )
    with op.batch_alter_table("number_lookups", schema=None) as batch_op:
        batch_op.create_index("ix_number_lookups_expires", ["expires_at"])


def downgrade() -> None:
    with op.batch_alter_table("number_lookups", schema=None) as batch_op:
        batch_op.drop_index("ix_number_lookups_expires")
    op.drop_table("number_lookups")
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.drop_column("kind")
        batch_op.drop_column("message_id")
