"""Initial schema: persons, faces, enrollments, processed_events.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Written by hand against db.models; tests/unit/db checks that head matches the models.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "persons",
        sa.Column("person_id", sa.String(128), nullable=False),
        sa.Column("display_name", sa.String(256), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_persons")),
    )
    op.create_table(
        "faces",
        sa.Column("face_id", sa.String(128), nullable=False),
        sa.Column("person_id", sa.String(128), nullable=False),
        sa.Column("enrollment_id", sa.String(128), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("embedding_dim", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(256), nullable=False),
        sa.Column("model_pack", sa.String(128), nullable=False),
        sa.Column("model_recognizer", sa.String(128), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("quality", sa.Float(), nullable=False),
        sa.Column("det_score", sa.Float(), nullable=False),
        sa.Column("bbox", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(128), nullable=False),
        sa.Column("image_path", sa.String(1024), nullable=True),
        sa.Column("filename", sa.String(512), nullable=False),
        sa.Column("source_topic", sa.String(255), nullable=False),
        sa.Column("source_partition", sa.Integer(), nullable=False),
        sa.Column("source_offset", sa.BigInteger(), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["persons.person_id"],
            name=op.f("fk_faces_person_id_persons"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("face_id", name=op.f("pk_faces")),
    )
    op.create_index(op.f("ix_faces_person_id"), "faces", ["person_id"])
    op.create_index(op.f("ix_faces_enrollment_id"), "faces", ["enrollment_id"])
    op.create_index(op.f("ix_faces_content_hash"), "faces", ["content_hash"])
    op.create_index(op.f("ix_faces_model_id"), "faces", ["model_id"])
    op.create_table(
        "enrollments",
        sa.Column("enrollment_id", sa.String(128), nullable=False),
        sa.Column("person_id", sa.String(128), nullable=False),
        sa.Column("image_count", sa.Integer(), nullable=False),
        sa.Column("accepted_count", sa.Integer(), nullable=False),
        sa.Column("rejected_count", sa.Integer(), nullable=False),
        sa.Column("outcomes", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        *_timestamps(),
        sa.CheckConstraint("status IN ('pending', 'complete')", name=op.f("ck_enrollments_status")),
        sa.PrimaryKeyConstraint("enrollment_id", name=op.f("pk_enrollments")),
    )
    op.create_index(op.f("ix_enrollments_person_id"), "enrollments", ["person_id"])
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.String(512), nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_processed_events")),
    )
    op.create_index(op.f("ix_processed_events_processed_at"), "processed_events", ["processed_at"])


def downgrade() -> None:
    op.drop_table("processed_events")
    op.drop_table("enrollments")
    op.drop_table("faces")
    op.drop_table("persons")
