"""Read side of the projection. Keyword-only functions taking the session; they return frozen
records (db.records), never ORM rows.

Every read of persons, faces and enrollments is scoped to one gallery (`gallery`, the default
gallery unless given) and sees nothing of the others: the same person id in two galleries is
two people, and a face or enrollment of another gallery reads as unknown. The counts take
`gallery=None` for a total over every gallery (operations' figures)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Enrollment, Face, Gallery, Person
from db.records import (
    EnrollmentRecord,
    FaceRecord,
    FaceSummary,
    GalleryRecord,
    ImageOutcome,
    PersonRecord,
    PersonSummary,
)
from schemas.events import DEFAULT_GALLERY, BBox, Embedding, ModelInfo

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
        gallery=face.gallery_id,
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


async def get_person(
    session: AsyncSession, *, person_id: str, gallery: str = DEFAULT_GALLERY
) -> PersonRecord | None:
    """The person of `gallery` with their faces (oldest first); None when unknown there."""
    person = await session.get(Person, (gallery, person_id), populate_existing=True)
    if person is None:
        return None
    faces = (
        await session.scalars(
            select(Face)
            .where(Face.gallery_id == gallery, Face.person_id == person_id)
            .order_by(Face.created_at, Face.face_id)
            .execution_options(populate_existing=True)
        )
    ).all()
    return PersonRecord(
        gallery=person.gallery_id,
        person_id=person.person_id,
        display_name=person.display_name,
        metadata=dict(person.attributes or {}),
        face_count=len(faces),
        faces=tuple(_face_summary(face) for face in faces),
        created_at=person.created_at,
        updated_at=person.updated_at,
    )


async def list_persons(
    session: AsyncSession, *, limit: int = 100, offset: int = 0, gallery: str = DEFAULT_GALLERY
) -> list[PersonSummary]:
    """One page of the persons of `gallery` ordered by person_id (stable across pages), with
    face counts."""
    limit = max(0, min(limit, MAX_PAGE))
    face_count = (
        select(Face.person_id, func.count().label("n"))
        .where(Face.gallery_id == gallery)
        .group_by(Face.person_id)
        .subquery()
    )
    rows = await session.execute(
        select(Person, func.coalesce(face_count.c.n, 0))
        .outerjoin(face_count, face_count.c.person_id == Person.person_id)
        .where(Person.gallery_id == gallery)
        .order_by(Person.person_id)
        .limit(limit)
        .offset(max(0, offset))
        .execution_options(populate_existing=True)
    )
    return [
        PersonSummary(
            gallery=person.gallery_id,
            person_id=person.person_id,
            display_name=person.display_name,
            face_count=int(count),
            created_at=person.created_at,
            updated_at=person.updated_at,
        )
        for person, count in rows.tuples()
    ]


async def count_persons(session: AsyncSession, *, gallery: str | None = DEFAULT_GALLERY) -> int:
    """The persons of `gallery` (None: of every gallery)."""
    statement = select(func.count()).select_from(Person)
    if gallery is not None:
        statement = statement.where(Person.gallery_id == gallery)
    return int(await session.scalar(statement) or 0)


async def count_faces(
    session: AsyncSession,
    *,
    person_id: str | None = None,
    model_id: str | None = None,
    gallery: str | None = DEFAULT_GALLERY,
) -> int:
    """The faces of `gallery` (None: of every gallery), or those of one person and/or one
    model there."""
    statement = select(func.count()).select_from(Face)
    if gallery is not None:
        statement = statement.where(Face.gallery_id == gallery)
    if person_id is not None:
        statement = statement.where(Face.person_id == person_id)
    if model_id is not None:
        statement = statement.where(Face.model_id == model_id)
    return int(await session.scalar(statement) or 0)


async def get_face(
    session: AsyncSession, *, face_id: str, gallery: str = DEFAULT_GALLERY
) -> FaceRecord | None:
    """The face, when it belongs to `gallery`; None otherwise."""
    face = await session.get(Face, face_id, populate_existing=True)
    return None if face is None or face.gallery_id != gallery else _face_record(face)


async def get_enrollment(
    session: AsyncSession, *, enrollment_id: str, gallery: str = DEFAULT_GALLERY
) -> EnrollmentRecord | None:
    """The enrollment, when it belongs to `gallery`; None otherwise."""
    enrollment = await session.get(Enrollment, enrollment_id, populate_existing=True)
    if enrollment is None or enrollment.gallery_id != gallery:
        return None
    return EnrollmentRecord(
        enrollment_id=enrollment.enrollment_id,
        gallery=enrollment.gallery_id,
        person_id=enrollment.person_id,
        image_count=enrollment.image_count,
        accepted_count=enrollment.accepted_count,
        rejected_count=enrollment.rejected_count,
        status=enrollment.status,  # type: ignore[arg-type]  # the check constraint holds it
        outcomes=tuple(_outcome(raw) for raw in enrollment.outcomes if raw is not None),
        created_at=enrollment.created_at,
        updated_at=enrollment.updated_at,
    )


def _gallery_record(gallery: Gallery, *, person_count: int, face_count: int) -> GalleryRecord:
    return GalleryRecord(
        gallery=gallery.id,
        description=gallery.description,
        pack=gallery.pack,
        threshold=gallery.threshold,
        quality_filter_enroll=gallery.quality_filter_enroll,
        quality_filter_identify=gallery.quality_filter_identify,
        index_backend=gallery.index_backend,
        index_options=dict(gallery.index_options or {}),
        generation=gallery.generation,
        state=gallery.state,  # type: ignore[arg-type]  # the check constraint holds it
        created_by=gallery.created_by,
        person_count=person_count,
        face_count=face_count,
        created_at=gallery.created_at,
        updated_at=gallery.updated_at,
    )


async def _counts_by_gallery(session: AsyncSession, column: Any) -> dict[str, int]:
    rows = await session.execute(select(column, func.count()).group_by(column))
    return {gallery: int(n) for gallery, n in rows.tuples()}


async def get_gallery(session: AsyncSession, *, gallery: str) -> GalleryRecord | None:
    """The gallery's definition as projected, with its person and face counts; None when the
    projection holds no such gallery."""
    found = await session.get(Gallery, gallery, populate_existing=True)
    if found is None:
        return None
    return _gallery_record(
        found,
        person_count=await count_persons(session, gallery=gallery),
        face_count=await count_faces(session, gallery=gallery),
    )


async def list_galleries(session: AsyncSession) -> list[GalleryRecord]:
    """Every gallery the projection holds (deleting ones too), by id, with their counts."""
    galleries = (
        await session.scalars(select(Gallery).order_by(Gallery.id).execution_options(populate_existing=True))
    ).all()
    persons = await _counts_by_gallery(session, Person.gallery_id)
    faces = await _counts_by_gallery(session, Face.gallery_id)
    return [
        _gallery_record(g, person_count=persons.get(g.id, 0), face_count=faces.get(g.id, 0))
        for g in galleries
    ]
