"""Tables of the metadata projection. Generic types only: the schema runs on PostgreSQL and SQLite.

The rows are a projection of the event log, written by one consumer and idempotent on event id
(`processed_events`). Migrations (`migrations/versions/`) are written by hand and must match this
module exactly; a test compares them with alembic's autogenerate.

Every person, face, enrollment and erasure barrier belongs to a gallery (`gallery_id`, the
`default` gallery for rows from before galleries): a person is (gallery_id, person_id); face
and enrollment ids are unique over every gallery.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    TypeDecorator,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from schemas.events import DEFAULT_GALLERY

# Constraint names are part of the schema (migrations refer to them): fix them by convention.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ENROLLMENT_PENDING = "pending"
ENROLLMENT_COMPLETE = "complete"
GALLERY_ACTIVE = "active"
GALLERY_DELETING = "deleting"

ID_LENGTH = 128
GALLERY_ID_LENGTH = 64


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp on every backend: stored in UTC, always read back aware
    (SQLite keeps no zone, so naive values coming back are UTC by construction)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


def _gallery_id(*, primary_key: bool = False) -> Mapped[str]:
    """The gallery a row belongs to. No foreign key to `galleries`: facts of a gallery may be
    consumed before its definition (they come from other topics), and must not be lost."""
    return mapped_column(
        String(GALLERY_ID_LENGTH),
        primary_key=primary_key,
        default=DEFAULT_GALLERY,
        server_default=DEFAULT_GALLERY,
    )


class Gallery(Timestamped, Base):
    """A gallery's latest definition, from the compacted galleries topic. The `default` row is
    written by the schema itself (migration 0003, or create_all): its policies are the
    deployment's settings, so its empty pack / backend mean "the deployment's"."""

    __tablename__ = "galleries"
    __table_args__ = (CheckConstraint(f"state IN ('{GALLERY_ACTIVE}', '{GALLERY_DELETING}')", name="state"),)

    id: Mapped[str] = mapped_column(String(GALLERY_ID_LENGTH), primary_key=True)
    description: Mapped[str] = mapped_column(String(1024), default="")
    pack: Mapped[str] = mapped_column(String(ID_LENGTH), default="")
    threshold: Mapped[float | None] = mapped_column(Float)
    quality_filter_enroll: Mapped[str | None] = mapped_column(String(16))
    quality_filter_identify: Mapped[str | None] = mapped_column(String(16))
    index_backend: Mapped[str] = mapped_column(String(64), default="")
    index_options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), default=GALLERY_ACTIVE)
    created_by: Mapped[str] = mapped_column(String(256), default="")


DEFAULT_GALLERY_DESCRIPTION = "The deployment's gallery: every route without a gallery acts on it."
_QUOTED_DESCRIPTION = DEFAULT_GALLERY_DESCRIPTION.replace("'", "''")

# create_all writes the default row as migration 0003 does (SQLite keeps CURRENT_TIMESTAMP as
# naive text in UTC, which UTCDateTime reads back as UTC).
event.listen(
    Gallery.__table__,
    "after_create",
    DDL(
        "INSERT INTO galleries (id, description, pack, index_backend, index_options, generation, "
        "state, created_by, created_at, updated_at) VALUES "
        f"('{DEFAULT_GALLERY}', '{_QUOTED_DESCRIPTION}', '', '', '{{}}', 0, "
        f"'{GALLERY_ACTIVE}', '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
    ),
)


class Person(Timestamped, Base):
    """A person of one gallery: the same person id in two galleries is two people."""

    __tablename__ = "persons"

    gallery_id: Mapped[str] = _gallery_id(primary_key=True)
    person_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(256))
    # `metadata` is reserved on declarative classes: the attribute is `attributes`.
    attributes: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)


class Face(Timestamped, Base):
    __tablename__ = "faces"
    __table_args__ = (
        ForeignKeyConstraint(
            ["gallery_id", "person_id"],
            ["persons.gallery_id", "persons.person_id"],
            ondelete="CASCADE",
        ),
        Index(None, "gallery_id", "person_id"),
        Index(None, "enrollment_id"),
        Index(None, "content_hash"),
        Index(None, "model_id"),
    )

    # Face ids are unique over every gallery (core.galleries.face_id_for scopes them).
    face_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    gallery_id: Mapped[str] = _gallery_id()
    person_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    enrollment_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # float32, little-endian
    embedding_dim: Mapped[int] = mapped_column(Integer)
    model_id: Mapped[str] = mapped_column(String(256))  # "pack/recognizer@version"
    model_pack: Mapped[str] = mapped_column(String(ID_LENGTH))
    model_recognizer: Mapped[str] = mapped_column(String(ID_LENGTH))
    model_version: Mapped[str] = mapped_column(String(64))
    quality: Mapped[float] = mapped_column(Float)
    det_score: Mapped[float] = mapped_column(Float)
    bbox: Mapped[dict[str, float]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(128))
    image_path: Mapped[str | None] = mapped_column(String(1024))
    filename: Mapped[str] = mapped_column(String(512), default="")
    source_topic: Mapped[str] = mapped_column(String(255))
    source_partition: Mapped[int] = mapped_column(Integer)
    source_offset: Mapped[int] = mapped_column(BigInteger)


class Enrollment(Timestamped, Base):
    __tablename__ = "enrollments"
    __table_args__ = (
        Index(None, "gallery_id", "person_id"),
        CheckConstraint(f"status IN ('{ENROLLMENT_PENDING}', '{ENROLLMENT_COMPLETE}')", name="status"),
    )

    enrollment_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    gallery_id: Mapped[str] = _gallery_id()
    # No foreign key: an enrollment whose every image was rejected has no person row.
    person_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    image_count: Mapped[int] = mapped_column(Integer)
    accepted_count: Mapped[int] = mapped_column(Integer, default=0)
    rejected_count: Mapped[int] = mapped_column(Integer, default=0)
    # One slot per image_index: null until that image's outcome has been projected.
    outcomes: Mapped[list[dict[str, Any] | None]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default=ENROLLMENT_PENDING)


class ProcessedEvent(Base):
    """Idempotency ledger: an event id is applied at most once, in the same transaction."""

    __tablename__ = "processed_events"
    __table_args__ = (Index(None, "processed_at"),)

    event_id: Mapped[str] = mapped_column(String(512), primary_key=True)
    topic: Mapped[str] = mapped_column(String(255))
    partition: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigInteger)
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PersonErasure(Base):
    """The last erasure of a person, with the log positions it reached: a record of that
    person below them (a face or an outcome the projection had not caught up with when the
    erasure arrived) belongs to before the erasure and is never projected."""

    __tablename__ = "person_erasures"

    gallery_id: Mapped[str] = _gallery_id(primary_key=True)
    person_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    erasure_id: Mapped[str] = mapped_column(String(64))
    # Partition (as a string: JSON keys) -> end offset, on the embeddings / outcomes topics.
    barrier: Mapped[dict[str, int]] = mapped_column(JSON)
    outcomes_barrier: Mapped[dict[str, int]] = mapped_column(JSON)
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
