"""The spend guard's shared state, for deployments without Redis (relay/guard/sql_store.py).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "guard_values",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("expires", sa.Float(), nullable=False),
    )
    op.create_index("guard_values_expires", "guard_values", ["expires"])
    op.create_table(
        "guard_rows",
        sa.Column("tbl", sa.String(255), primary_key=True),
        sa.Column("field", sa.String(255), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )
    op.create_table(
        "guard_queue",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("queue", sa.String(255), nullable=False),
        sa.Column("item", sa.String(255), nullable=False),
        sa.Column("position", sa.Float(), nullable=False),
    )
    op.create_index("guard_queue_order", "guard_queue", ["queue", "position"])


def downgrade() -> None:
    op.drop_table("guard_queue")
    op.drop_table("guard_rows")
    op.drop_table("guard_values")
