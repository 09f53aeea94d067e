"""Apply events to the metadata projection, each exactly once.

Every `apply_*` function records the event id in `processed_events` in the caller's transaction
and returns False (changing nothing) when that id is already there, so a consumer may re-deliver
a batch after a crash. Committing is the caller's job: commit the session after a batch, then
commit the Kafka offsets (a crash in between re-delivers events that are then skipped).

Event ids: records with a body use the envelope's `event_id`. A tombstone on a compacted topic
has no body, hence no event id: use `record_event_id(topic, partition, offset)`, i.e.
"{topic}:{partition}:{offset}", which names that record for as long as the log keeps it.

`at` is the event's time (the envelope's `time`); it defaults to now and stamps the
created_at / updated_at columns, so a replay rebuilds the same audit times.

Galleries: every fact is projected into its gallery (a person is (gallery, person id)). The
galleries topic upserts a gallery's row (`apply_gallery_defined`), marks it deleting and drops
its rows (`apply_gallery_deleted`), and removes it (`apply_gallery_removed`, the tombstone).
Facts of a deleting gallery are not projected; facts of a gallery whose definition has not
been read yet are (the galleries topic is consumed beside the others, in no order with them).
The `default` gallery is the deployment's: records of the galleries topic about it change
nothing, as in core.galleries.GalleryRegistry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import ErrorCode, FacestreamError
from db.models import (
    ENROLLMENT_COMPLETE,
    ENROLLMENT_PENDING,
    GALLERY_ACTIVE,
    GALLERY_DELETING,
    Enrollment,
    Face,
    Gallery,
    Person,
    PersonErasure,
    ProcessedEvent,
    utcnow,
)
from schemas.events import DEFAULT_GALLERY, FaceEmbedded, GalleryDefined, GalleryDeleted, ImageEnrolled

# Upserts are dialect statements; both dialects spell ON CONFLICT the same way.
_INSERTS: dict[str, Callable[..., Any]] = {
    "postgresql": postgresql.insert,
    "sqlite": sqlite.insert,
}

_OUTCOME_FIELDS = {
    "image_index",
    "filename",
    "status",
    "face_id",
    "quality",
    "bbox",
    "reason",
    "message",
}


def record_event_id(topic: str, partition: int, offset: int) -> str:
    """The event id of a record without a body (a tombstone): its position in the log."""
    return f"{topic}:{partition}:{offset}"


def _insert(session: AsyncSession, model: type[Any]) -> Any:
    dialect = session.get_bind().dialect.name
    try:
        return _INSERTS[dialect](model)
    except KeyError:
        raise FacestreamError(ErrorCode.INTERNAL, f"no upsert for database dialect {dialect!r}") from None


async def _claim(session: AsyncSession, *, event_id: str, topic: str, partition: int, offset: int) -> bool:
    """Record the event id; False when it was already recorded (the event is a duplicate)."""
    statement = (
        _insert(session, ProcessedEvent)
        .values(
            event_id=event_id,
            topic=topic,
            partition=partition,
            offset=offset,
            processed_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=[ProcessedEvent.event_id])
        .returning(ProcessedEvent.event_id)
    )
    return (await session.execute(statement)).scalar_one_or_none() is not None


async def apply_face_embedded(
    session: AsyncSession,
    *,
    event_id: str,
    fact: FaceEmbedded,
    topic: str,
    partition: int,
    offset: int,
    image_path: str | None = None,
    at: datetime | None = None,
) -> bool:
    """Upsert the person (created on its first face) and the face. False if a duplicate."""
    model = fact.embedding.model
    vector = fact.embedding.vector_f32le
    if len(vector) != 4 * model.dim:
        raise FacestreamError(
            ErrorCode.INVALID_MESSAGE,
            f"face {fact.face_id}: embedding has {len(vector)} bytes, dim {model.dim} needs {4 * model.dim}",
        )
    if not await _claim(session, event_id=event_id, topic=topic, partition=partition, offset=offset):
        return False
    if await _gallery_deleting(session, fact.gallery):
        return False
    if await _erased_before(
        session, gallery=fact.gallery, person_id=fact.person_id, partition=partition, offset=offset
    ):
        return False
    now = at or utcnow()
    person = _insert(session, Person).values(
        gallery_id=fact.gallery, person_id=fact.person_id, attributes={}, created_at=now, updated_at=now
    )
    await session.execute(
        person.on_conflict_do_update(
            index_elements=[Person.gallery_id, Person.person_id], set_={"updated_at": now}
        )
    )
    values: dict[str, Any] = {
        "gallery_id": fact.gallery,
        "person_id": fact.person_id,
        "enrollment_id": fact.enrollment_id,
        "embedding": vector,
        "embedding_dim": model.dim,
        "model_id": model.id,
        "model_pack": model.pack,
        "model_recognizer": model.recognizer,
        "model_version": model.version,
        "quality": fact.quality,
        "det_score": fact.det_score,
        "bbox": fact.bbox.model_dump(mode="json"),
        "content_hash": fact.content_hash,
        "image_path": image_path,
        "filename": fact.filename,
        "source_topic": topic,
        "source_partition": partition,
        "source_offset": offset,
        "updated_at": now,
    }
    face = _insert(session, Face).values(face_id=fact.face_id, created_at=now, **values)
    await session.execute(face.on_conflict_do_update(index_elements=[Face.face_id], set_=values))
    return True


async def apply_face_removed(
    session: AsyncSession,
    *,
    event_id: str,
    face_id: str,
    topic: str,
    partition: int,
    offset: int,
    at: datetime | None = None,
) -> bool:
    """Delete one face (a tombstone). The person row stays, even with no face left, unless
    their gallery no longer exists (a face projected after its gallery was removed)."""
    if not await _claim(session, event_id=event_id, topic=topic, partition=partition, offset=offset):
        return False
    deleted = await session.execute(
        delete(Face).where(Face.face_id == face_id).returning(Face.gallery_id, Face.person_id)
    )
    row = deleted.one_or_none()
    if row is None:
        return True
    gallery, person_id = row
    if gallery != DEFAULT_GALLERY and await session.get(Gallery, gallery, populate_existing=True) is None:
        remaining = await session.scalar(
            select(Face.face_id).where(Face.gallery_id == gallery, Face.person_id == person_id).limit(1)
        )
        if remaining is None:
            await _delete_person_rows(session, gallery, person_id)
            return True
    await session.execute(
        update(Person)
        .where(Person.gallery_id == gallery, Person.person_id == person_id)
        .values(updated_at=at or utcnow())
        .execution_options(synchronize_session=False)
    )
    return True


async def apply_person_removed(
    session: AsyncSession,
    *,
    event_id: str,
    person_id: str,
    topic: str,
    partition: int,
    offset: int,
    gallery: str = DEFAULT_GALLERY,
    erasure_id: str = "",
    barrier: Mapping[int, int] | None = None,
    outcomes_barrier: Mapping[int, int] | None = None,
    at: datetime | None = None,
) -> bool:
    """Erase a person: their faces, their enrollments (outcomes carry filenames and face
    boxes) and the person row. Deleting faces explicitly does not rely on the cascade.

    With a `barrier` (embeddings partition -> end offset when the erasure was ordered), only
    faces below it are erased, the barriers are remembered so that records below them that
    arrive later are never projected, and a face enrolled after the erasure (and whatever
    enrollment produced it) stays. Without one (a fact from before barriers), everything goes.
    Only the person of `gallery` is erased: the same person id elsewhere is someone else."""
    if not await _claim(session, event_id=event_id, topic=topic, partition=partition, offset=offset):
        return False
    if not barrier:
        await _delete_person_rows(session, gallery, person_id)
        return True
    await _remember_erasure(
        session,
        gallery=gallery,
        person_id=person_id,
        erasure_id=erasure_id,
        barrier=barrier,
        outcomes_barrier=outcomes_barrier or {},
        at=at or utcnow(),
    )
    faces = (
        await session.scalars(select(Face).where(Face.gallery_id == gallery, Face.person_id == person_id))
    ).all()
    erased = [f.face_id for f in faces if f.source_offset < barrier.get(f.source_partition, 0)]
    kept = {f.face_id for f in faces} - set(erased)
    if not kept:
        await _delete_person_rows(session, gallery, person_id)
        return True
    await session.execute(
        delete(Face).where(Face.face_id.in_(erased)).execution_options(synchronize_session=False)
    )
    enrollments = (
        await session.scalars(
            select(Enrollment).where(Enrollment.gallery_id == gallery, Enrollment.person_id == person_id)
        )
    ).all()
    stale = [e.enrollment_id for e in enrollments if not kept & _face_ids(e)]
    await session.execute(
        delete(Enrollment)
        .where(Enrollment.enrollment_id.in_(stale))
        .execution_options(synchronize_session=False)
    )
    return True


async def _delete_person_rows(session: AsyncSession, gallery: str, person_id: str) -> None:
    for statement in (
        delete(Face).where(Face.gallery_id == gallery, Face.person_id == person_id),
        delete(Enrollment).where(Enrollment.gallery_id == gallery, Enrollment.person_id == person_id),
        delete(Person).where(Person.gallery_id == gallery, Person.person_id == person_id),
    ):
        await session.execute(statement.execution_options(synchronize_session=False))


def _face_ids(enrollment: Enrollment) -> set[str]:
    return {o["face_id"] for o in enrollment.outcomes if o and o.get("face_id")}


async def _remember_erasure(
    session: AsyncSession,
    *,
    gallery: str,
    person_id: str,
    erasure_id: str,
    barrier: Mapping[int, int],
    outcomes_barrier: Mapping[int, int],
    at: datetime,
) -> None:
    """Keep the furthest position per partition over every erasure of the person."""
    previous = await session.get(PersonErasure, (gallery, person_id), populate_existing=True)
    merged = _furthest(previous.barrier if previous else {}, barrier)
    merged_outcomes = _furthest(previous.outcomes_barrier if previous else {}, outcomes_barrier)
    values = {
        "erasure_id": erasure_id,
        "barrier": merged,
        "outcomes_barrier": merged_outcomes,
        "erased_at": at,
    }
    await session.execute(
        _insert(session, PersonErasure)
        .values(gallery_id=gallery, person_id=person_id, **values)
        .on_conflict_do_update(
            index_elements=[PersonErasure.gallery_id, PersonErasure.person_id], set_=values
        )
    )


def _furthest(stored: Mapping[str, int], new: Mapping[int, int]) -> dict[str, int]:
    merged = dict(stored)
    for partition, offset in new.items():
        merged[str(partition)] = max(merged.get(str(partition), 0), offset)
    return merged


async def _erased_before(
    session: AsyncSession,
    *,
    gallery: str,
    person_id: str,
    partition: int,
    offset: int,
    outcomes: bool = False,
) -> bool:
    """True when a record of the person at (partition, offset) lies below an erasure."""
    # populate_existing: an upsert or delete earlier in this transaction is what counts.
    erasure = await session.get(PersonErasure, (gallery, person_id), populate_existing=True)
    if erasure is None:
        return False
    barrier = erasure.outcomes_barrier if outcomes else erasure.barrier
    return offset < barrier.get(str(partition), 0)


async def apply_image_enrolled(
    session: AsyncSession,
    *,
    event_id: str,
    fact: ImageEnrolled,
    topic: str,
    partition: int,
    offset: int,
    at: datetime | None = None,
) -> bool:
    """Merge one image's outcome into its enrollment (created by whichever outcome comes
    first), recount, and mark it complete once every image_count outcome is in.

    Outcomes may arrive in any order; a second outcome for the same image_index replaces the
    first (a retried command), so counts never double."""
    if not 0 <= fact.image_index < max(fact.image_count, 1):
        raise FacestreamError(
            ErrorCode.INVALID_MESSAGE,
            f"enrollment {fact.enrollment_id}: image_index {fact.image_index} outside "
            f"image_count {fact.image_count}",
        )
    if not await _claim(session, event_id=event_id, topic=topic, partition=partition, offset=offset):
        return False
    if await _gallery_deleting(session, fact.gallery):
        return False
    if await _erased_before(
        session,
        gallery=fact.gallery,
        person_id=fact.person_id,
        partition=partition,
        offset=offset,
        outcomes=True,
    ):
        return False
    now = at or utcnow()
    await session.execute(
        _insert(session, Enrollment)
        .values(
            enrollment_id=fact.enrollment_id,
            gallery_id=fact.gallery,
            person_id=fact.person_id,
            image_count=fact.image_count,
            accepted_count=0,
            rejected_count=0,
            outcomes=[None] * fact.image_count,
            status=ENROLLMENT_PENDING,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=[Enrollment.enrollment_id])
    )
    enrollment = (
        await session.execute(
            select(Enrollment)
            .where(Enrollment.enrollment_id == fact.enrollment_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    image_count = max(enrollment.image_count, fact.image_count)
    outcomes = list(enrollment.outcomes) + [None] * (image_count - len(enrollment.outcomes))
    outcomes[fact.image_index] = fact.model_dump(mode="json", include=_OUTCOME_FIELDS)
    # A new list (not an in-place edit) so the JSON column is seen as changed.
    enrollment.outcomes = outcomes
    enrollment.image_count = image_count
    enrollment.accepted_count = sum(1 for o in outcomes if o and o["status"] == "accepted")
    enrollment.rejected_count = sum(1 for o in outcomes if o and o["status"] == "rejected")
    complete = all(o is not None for o in outcomes)
    enrollment.status = ENROLLMENT_COMPLETE if complete else ENROLLMENT_PENDING
    enrollment.updated_at = now
    await session.flush()
    return True


async def _gallery_deleting(session: AsyncSession, gallery: str) -> bool:
    state = await session.scalar(select(Gallery.state).where(Gallery.id == gallery))
    return state == GALLERY_DELETING


def _created_at(fact: GalleryDefined, fallback: datetime) -> datetime:
    """The definition's own creation time (ISO 8601) when it carries a readable one."""
    try:
        created = datetime.fromisoformat(fact.created_at)
    except ValueError:
        return fallback
    return created if created.tzinfo is not None else fallback


async def apply_gallery_defined(
    session: AsyncSession,
    *,
    event_id: str,
    fact: GalleryDefined,
    topic: str,
    partition: int,
    offset: int,
    at: datetime | None = None,
) -> bool:
    """Upsert the gallery's row with its latest definition (active again, as the registry
    reads it). False if a duplicate."""
    if not await _claim(session, event_id=event_id, topic=topic, partition=partition, offset=offset):
        return False
    if fact.gallery == DEFAULT_GALLERY:
        return True
    now = at or utcnow()
    values: dict[str, Any] = {
        "description": fact.description,
        "pack": fact.pack,
        "threshold": fact.threshold,
        "quality_filter_enroll": fact.quality_filter_enroll,
        "quality_filter_identify": fact.quality_filter_identify,
        "index_backend": fact.index.backend,
        "index_options": dict(fact.index.options),
        "generation": fact.generation,
        "state": GALLERY_ACTIVE,
        "created_by": fact.created_by,
        "updated_at": now,
    }
    await session.execute(
        _insert(session, Gallery)
        .values(id=fact.gallery, created_at=_created_at(fact, now), **values)
        .on_conflict_do_update(index_elements=[Gallery.id], set_=values)
    )
    return True


async def apply_gallery_deleted(
    session: AsyncSession,
    *,
    event_id: str,
    fact: GalleryDeleted,
    topic: str,
    partition: int,
    offset: int,
    at: datetime | None = None,
) -> bool:
    """Mark the gallery deleting and drop its persons, faces, enrollments and erasure
    barriers; from here on its facts are not projected. A gallery never defined here gets a
    deleting row too (its definition may have been compacted away, or not read yet)."""
    if not await _claim(session, event_id=event_id, topic=topic, partition=partition, offset=offset):
        return False
    if fact.gallery == DEFAULT_GALLERY:
        return True
    now = at or utcnow()
    await session.execute(
        _insert(session, Gallery)
        .values(
            id=fact.gallery, pack="", index_options={}, state=GALLERY_DELETING, created_at=now, updated_at=now
        )
        .on_conflict_do_update(
            index_elements=[Gallery.id], set_={"state": GALLERY_DELETING, "updated_at": now}
        )
    )
    await _delete_gallery_rows(session, fact.gallery)
    return True


async def apply_gallery_removed(
    session: AsyncSession,
    *,
    event_id: str,
    gallery: str,
    topic: str,
    partition: int,
    offset: int,
) -> bool:
    """A tombstone on the galleries topic: the gallery is gone (its id is free again). Its
    row goes, with any row of it still here."""
    if not await _claim(session, event_id=event_id, topic=topic, partition=partition, offset=offset):
        return False
    if gallery == DEFAULT_GALLERY:
        return True
    await _delete_gallery_rows(session, gallery)
    await session.execute(
        delete(Gallery).where(Gallery.id == gallery).execution_options(synchronize_session=False)
    )
    return True


async def _delete_gallery_rows(session: AsyncSession, gallery: str) -> None:
    for statement in (
        delete(Face).where(Face.gallery_id == gallery),
        delete(Enrollment).where(Enrollment.gallery_id == gallery),
        delete(Person).where(Person.gallery_id == gallery),
        delete(PersonErasure).where(PersonErasure.gallery_id == gallery),
    ):
        await session.execute(statement.execution_options(synchronize_session=False))


async def prune_processed_events(session: AsyncSession, *, before: datetime) -> int:
    """Forget the ids of events processed before `before`; returns how many were forgotten.

    The ledger only has to cover what can still be re-delivered (records after the last
    committed offset, or a replay the operator starts): keep well more than that window."""
    result = await session.execute(
        delete(ProcessedEvent)
        .where(ProcessedEvent.processed_at < before)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
