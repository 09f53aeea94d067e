"""Read side of the projection. Keyword-only functions taking the session; they return frozen
records (db.records), never ORM rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Enrollment, Face, Person
from db.records import (
    EnrollmentRecord,
    FaceRecord,
    FaceSummary,
    ImageOutcome,
    PersonRecord,
    PersonSummary,
)
from schemas.events import BBox, Embedding, ModelInfo

MAX_PAGE = 1000


def _face_summary(face: Face) -> FaceSummary:
    return FaceSummary(
        face_id=face.face_id,
        quality=face.quality,
        det_score=face.det_score,
        bbox=BBox.model_validate(face.bbox),
        model_id=face.model_id,
        enrollment_id=face.enrollment_id,
        created_at=face.created_at,
    )


def _face_record(face: Face) -> FaceRecord:
    model = ModelInfo(
        pack=face.model_pack,
        recognizer=face.model_recognizer,
        version=face.model_version,
        dim=face.embedding_dim,
    )
    return FaceRecord(
        face_id=face.face_id,
        person_id=face.person_id,
        enrollment_id=face.enrollment_id,
        embedding=Embedding(model=model, vector_f32le=face.embedding),
        quality=face.quality,
        det_score=face.det_score,
        bbox=BBox.model_validate(face.bbox),
        content_hash=face.content_hash,
        image_path=face.image_path,
        filename=face.filename,
        source_topic=face.source_topic,
        source_partition=face.source_partition,
        source_offset=face.source_offset,
        created_at=face.created_at,
        updated_at=face.updated_at,
    )


def _outcome(raw: dict[str, Any]) -> ImageOutcome:
    bbox = raw.get("bbox")
    return ImageOutcome(
        image_index=raw["image_index"],
        filename=raw.get("filename", ""),
        status=raw["status"],
        face_id=raw.get("face_id"),
        quality=raw.get("quality"),
        bbox=BBox.model_validate(bbox) if bbox is not None else None,
        reason=raw.get("reason"),
        message=raw.get("message"),
    )


async def get_person(session: AsyncSession, *, person_id: str) -> PersonRecord | None:
    """The person with their faces (oldest first); None when unknown."""
    person = await session.get(Person, person_id, populate_existing=True)
    if person is None:
        return None
    faces = (
        await session.scalars(
            select(Face)
            .where(Face.person_id == person_id)
            .order_by(Face.created_at, Face.face_id)
            .execution_options(populate_existing=True)
        )
    ).all()
    return PersonRecord(
        person_id=person.person_id,
        display_name=person.display_name,
        metadata=dict(person.attributes or {}),
        face_count=len(faces),
        faces=tuple(_face_summary(face) for face in faces),
        created_at=person.created_at,
        updated_at=person.updated_at,
    )


async def list_persons(session: AsyncSession, *, limit: int = 100, offset: int = 0) -> list[PersonSummary]:
    """One page of persons ordered by person_id (stable across pages), with face counts."""
    limit = max(0, min(limit, MAX_PAGE))
    face_count = select(Face.person_id, func.count().label("n")).group_by(Face.person_id).subquery()
    rows = await session.execute(
        select(Person, func.coalesce(face_count.c.n, 0))
        .outerjoin(face_count, face_count.c.person_id == Person.person_id)
        .order_by(Person.person_id)
        .limit(limit)
        .offset(max(0, offset))
        .execution_options(populate_existing=True)
    )
    return [
        PersonSummary(
            person_id=person.person_id,
            display_name=person.display_name,
            face_count=int(count),
            created_at=person.created_at,
            updated_at=person.updated_at,
        )
        for person, count in rows.tuples()
    ]


async def count_persons(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Person)) or 0)


async def count_faces(
    session: AsyncSession, *, person_id: str | None = None, model_id: str | None = None
) -> int:
    """All faces, or those of one person and/or one model."""
    statement = select(func.count()).select_from(Face)
    if person_id is not None:
        statement = statement.where(Face.person_id == person_id)
    if model_id is not None:
        statement = statement.where(Face.model_id == model_id)
    return int(await session.scalar(statement) or 0)


async def get_face(session: AsyncSession, *, face_id: str) -> FaceRecord | None:
    face = await session.get(Face, face_id, populate_existing=True)
    return None if face is None else _face_record(face)


async def get_enrollment(session: AsyncSession, *, enrollment_id: str) -> EnrollmentRecord | None:
    enrollment = await session.get(Enrollment, enrollment_id, populate_existing=True)
    if enrollment is None:
        return None
    return EnrollmentRecord(
        enrollment_id=enrollment.enrollment_id,
        person_id=enrollment.person_id,
        image_count=enrollment.image_count,
        accepted_count=enrollment.accepted_count,
        rejected_count=enrollment.rejected_count,
        status=enrollment.status,  # type: ignore[arg-type]  # the check constraint holds it
        outcomes=tuple(_outcome(raw) for raw in enrollment.outcomes if raw is not None),
        created_at=enrollment.created_at,
        updated_at=enrollment.updated_at,
    )
