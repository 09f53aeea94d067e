"""person_erasures: the log positions each person's last erasure reached.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

Written by hand against db.models; tests/unit/db checks that head matches the models.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "person_erasures",
        sa.Column("person_id", sa.String(128), nullable=False),
        sa.Column("erasure_id", sa.String(64), nullable=False),
        sa.Column("barrier", sa.JSON(), nullable=False),
        sa.Column("outcomes_barrier", sa.JSON(), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_person_erasures")),
    )


def downgrade() -> None:
    op.drop_table("person_erasures")
