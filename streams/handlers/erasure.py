"""Erasure: an ErasePerson ordered behind the person's enrollments, then turned into face
tombstones and a PersonErased (or FaceErased) fact on the erasure ledger."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from core.settings import TopicNames
from schemas.envelope import Envelope
from schemas.events import EraseFace, EraseGallery, ErasePerson, FaceErased, GalleryErased, PersonErased
from streams.handlers.output import Output


def ordered(
    command: Envelope[ErasePerson],
    *,
    barrier: dict[int, int],
    outcomes_barrier: dict[int, int],
    topics: TopicNames,
) -> Output:
    """The command for the eraser, carrying the log positions that every enrollment of the
    person accepted before it lies below."""
    payload = command.payload.model_copy(update={"barrier": barrier, "outcomes_barrier": outcomes_barrier})
    return Output(
        topic=topics.erasure_requests,
        key=payload.person_id,
        envelope=Envelope.wrap(payload, correlation_id=command.correlation_id),
    )


def last_offsets(acks: Iterable[Any]) -> dict[int, int]:
    """Partition -> the highest offset among the acknowledged records."""
    offsets: dict[int, int] = {}
    for ack in acks:
        offsets[ack.partition] = max(offsets.get(ack.partition, -1), ack.offset)
    return offsets


def person_erased(
    command: Envelope[ErasePerson], *, face_ids: list[str], tombstones: dict[int, int], topics: TopicNames
) -> Output:
    payload = command.payload
    fact = PersonErased(
        erasure_id=payload.erasure_id,
        person_id=payload.person_id,
        gallery=payload.gallery,
        face_ids=sorted(face_ids),
        requested_by=payload.requested_by,
        tombstones=tombstones,
        barrier=payload.barrier,
        outcomes_barrier=payload.outcomes_barrier,
    )
    return Output(
        topic=topics.erasures,
        key=payload.person_id,
        envelope=Envelope.wrap(fact, correlation_id=command.correlation_id),
    )


def face_erased(
    command: Envelope[EraseFace], *, person_id: str | None, tombstones: dict[int, int], topics: TopicNames
) -> Output:
    payload = command.payload
    fact = FaceErased(
        erasure_id=payload.erasure_id,
        face_id=payload.face_id,
        person_id=person_id,
        gallery=payload.gallery,
        requested_by=payload.requested_by,
        tombstones=tombstones,
    )
    return Output(
        topic=topics.erasures,
        key=payload.face_id,
        envelope=Envelope.wrap(fact, correlation_id=command.correlation_id),
    )


def gallery_erased(
    command: Envelope[EraseGallery],
    *,
    face_count: int,
    tombstones: dict[int, int],
    barrier: dict[int, int],
    topics: TopicNames,
) -> list[Output]:
    """The ledger's fact, then the gallery's own tombstone: the id is free again."""
    payload = command.payload
    fact = GalleryErased(
        erasure_id=payload.erasure_id,
        gallery=payload.gallery,
        face_count=face_count,
        requested_by=payload.requested_by,
        tombstones=tombstones,
        barrier=barrier,
    )
    return [
        Output(
            topic=topics.erasures,
            key=payload.gallery,
            envelope=Envelope.wrap(fact, correlation_id=command.correlation_id),
        )
    ]
