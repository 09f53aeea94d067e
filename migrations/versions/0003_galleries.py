"""galleries: a table of gallery definitions; persons, faces, enrollments and person erasures
belong to a gallery. A person is now (gallery_id, person_id).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

Every existing row moves to the `default` gallery (the upgrade of a single-gallery
deployment). The downgrade refuses while rows of any other gallery exist: persons of two
galleries may share a person id, and folding them into one would merge two people.

SQLite copies a table to change it (batch mode), and checks foreign keys while it copies: the
faces lose their foreign key before persons get their new primary key, and get the composite
one back afterwards. Written by hand against db.models; tests/unit/db checks that head matches
the models.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT = "default"
DEFAULT_DESCRIPTION = "The deployment's gallery: every route without a gallery acts on it."


def _gallery_column() -> sa.Column[str]:
    return sa.Column("gallery_id", sa.String(64), nullable=False, server_default=DEFAULT)


def upgrade() -> None:
    op.create_table(
        "galleries",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("description", sa.String(1024), nullable=False),
        sa.Column("pack", sa.String(128), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("quality_filter_enroll", sa.String(16), nullable=True),
        sa.Column("quality_filter_identify", sa.String(16), nullable=True),
        sa.Column("index_backend", sa.String(64), nullable=False),
        sa.Column("index_options", sa.JSON(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("state IN ('active', 'deleting')", name=op.f("ck_galleries_state")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_galleries")),
    )
    # Plain SQL (not bulk_insert), so that `upgrade --sql` renders it too.
    description = DEFAULT_DESCRIPTION.replace("'", "''")
    op.execute(
        "INSERT INTO galleries (id, description, pack, index_backend, index_options, generation, "
        "state, created_by, created_at, updated_at) VALUES "
        f"('{DEFAULT}', '{description}', '', '', '{{}}', 0, 'active', '', "
        "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
    )

    with op.batch_alter_table("faces") as batch:
        batch.add_column(_gallery_column())
        batch.drop_constraint("fk_faces_person_id_persons", type_="foreignkey")
        batch.drop_index("ix_faces_person_id")
        batch.create_index(op.f("ix_faces_gallery_id_person_id"), ["gallery_id", "person_id"])
    with op.batch_alter_table("persons") as batch:
        batch.add_column(_gallery_column())
        batch.drop_constraint("pk_persons", type_="primary")
        batch.create_primary_key(op.f("pk_persons"), ["gallery_id", "person_id"])
    with op.batch_alter_table("faces") as batch:
        batch.create_foreign_key(
            op.f("fk_faces_gallery_id_persons"),
            "persons",
            ["gallery_id", "person_id"],
            ["gallery_id", "person_id"],
            ondelete="CASCADE",
        )
    with op.batch_alter_table("enrollments") as batch:
        batch.add_column(_gallery_column())
        batch.drop_index("ix_enrollments_person_id")
        batch.create_index(op.f("ix_enrollments_gallery_id_person_id"), ["gallery_id", "person_id"])
    with op.batch_alter_table("person_erasures") as batch:
        batch.add_column(_gallery_column())
        batch.drop_constraint("pk_person_erasures", type_="primary")
        batch.create_primary_key(op.f("pk_person_erasures"), ["gallery_id", "person_id"])


def _refuse_other_galleries() -> None:
    connection = op.get_bind()
    for table in ("galleries", "persons", "faces", "enrollments", "person_erasures"):
        column = "id" if table == "galleries" else "gallery_id"
        others = connection.execute(
            sa.text(f"SELECT COUNT(*) FROM {table} WHERE {column} <> :default"), {"default": DEFAULT}
        ).scalar_one()
        if others:
            raise RuntimeError(
                f"cannot downgrade below 0003: {table} holds {others} row(s) of galleries other "
                f"than {DEFAULT!r}; delete those galleries first"
            )


def downgrade() -> None:
    _refuse_other_galleries()
    with op.batch_alter_table("person_erasures") as batch:
        batch.drop_constraint("pk_person_erasures", type_="primary")
        batch.create_primary_key(op.f("pk_person_erasures"), ["person_id"])
        batch.drop_column("gallery_id")
    with op.batch_alter_table("enrollments") as batch:
        batch.drop_index("ix_enrollments_gallery_id_person_id")
        batch.create_index(op.f("ix_enrollments_person_id"), ["person_id"])
        batch.drop_column("gallery_id")
    with op.batch_alter_table("faces") as batch:
        batch.drop_constraint("fk_faces_gallery_id_persons", type_="foreignkey")
        batch.drop_index("ix_faces_gallery_id_person_id")
        batch.create_index(op.f("ix_faces_person_id"), ["person_id"])
        batch.drop_column("gallery_id")
    with op.batch_alter_table("persons") as batch:
        batch.drop_constraint("pk_persons", type_="primary")
        batch.create_primary_key(op.f("pk_persons"), ["person_id"])
        batch.drop_column("gallery_id")
    with op.batch_alter_table("faces") as batch:
        batch.create_foreign_key(
            op.f("fk_faces_person_id_persons"),
            "persons",
            ["person_id"],
            ["person_id"],
            ondelete="CASCADE",
        )
    op.drop_table("galleries")
