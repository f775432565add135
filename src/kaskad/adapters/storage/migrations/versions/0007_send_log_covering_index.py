"""send_log: the contact's index covers what caps and de-duplication read

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 14:35:00

On PostgreSQL the (contact_id, at) index also carries the columns the policy reads, so a
contact's recent sends come from the index alone (an index-only scan: a few pages instead of
one heap page per send, which matters once the send log outgrows memory). SQLite ignores
``INCLUDE`` and keeps the plain index.
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COVERED = ["notification_id", "category", "channel", "topic", "content_key", "journey_id"]


def upgrade() -> None:
    with op.batch_alter_table("send_log", schema=None) as batch_op:
        batch_op.drop_index("ix_send_log_contact_at")
        batch_op.create_index(
            "ix_send_log_contact_at", ["contact_id", "at"], postgresql_include=COVERED
        )


def downgrade() -> None:
    with op.batch_alter_table("send_log", schema=None) as batch_op:
        batch_op.drop_index("ix_send_log_contact_at")
        batch_op.create_index("ix_send_log_contact_at", ["contact_id", "at"])
