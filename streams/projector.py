"""Metadata projection: the embeddings log, enrollment outcomes, the erasures ledger and the
galleries topic -> PostgreSQL.

Each batch is applied in one database transaction, committed, and only then are the Kafka
offsets committed (``core.consume``). Replays are harmless: every apply is idempotent on its
event id. While the database is away (or its schema behind: a missing table), the batch is
retried with backoff and nothing is committed; a record that cannot be applied — one the
schemas refuse, or whose data the database refuses (a value too long for its column, out of
range, a constraint it breaks) — is a dead letter, and the batch goes on without it.
"""

from __future__ import annotations

import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.batch_guard import BROKER_ERRORS
from core.errors import ErrorCode, FacestreamError
from core.kafka import decode, event_type, key_text, make_consumer, make_producer
from core.metrics import Metrics
from core.settings import Settings
from db import projection
from schemas.events import (
    ErasureRequested,
    FaceEmbedded,
    FaceErased,
    GalleryDefined,
    GalleryDeleted,
    GalleryErased,
    ImageEnrolled,
    PersonErased,
)
from streams.handlers.dead_letter import dead_letter_for
from streams.handlers.output import Output
from streams.producing import producing_step

# Retried with backoff for as long as they last, nothing committed meanwhile.
DATABASE_AWAY = (OperationalError, DBAPIError, OSError)
# SQLSTATE classes of a statement refused for the data it carries: 22 data exception (too long,
# out of range, a character the encoding cannot hold), 23 integrity constraint violation.
_REFUSED_DATA_CLASSES = ("22", "23")


def refused_data(exc: DBAPIError) -> str | None:
    """Why the database refused a record's data, or None where the error is not the record's
    (the database away, its schema behind, a bug of ours): those are retried, not dead-lettered.
    asyncpg's own check of a parameter (an int beyond its column's range) comes as 22000 too."""
    sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
    if isinstance(exc, IntegrityError | DataError) or sqlstate[:2] in _REFUSED_DATA_CLASSES:
        return str(exc.orig).strip().splitlines()[0]
    return None


class Projector:
    def __init__(
        self, settings: Settings, metrics: Metrics, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.sessions = sessions

    async def run(self) -> None:
        topics = self.settings.topics
        # aiokafka clients bind to the running loop: create them inside it.
        self.consumer: AIOKafkaConsumer = make_consumer(
            self.settings,
            topics.embeddings,
            topics.enrollment_outcomes,
            topics.erasures,
            topics.galleries,
            group_id=f"{self.settings.topic_prefix}.projector",
        )
        self.producer: AIOKafkaProducer = make_producer(self.settings)
        await self.producer.start()
        await self.consumer.start()
        step = producing_step(
            self.consumer,
            self.producer,
            self._project,
            stage="projector",
            topics=topics,
            commit=True,
            transient=(*BROKER_ERRORS, *DATABASE_AWAY),
        )
        try:
            await step.run()
        finally:
            await self.consumer.stop()
            await self.producer.stop()

    async def _project(self, records: list[ConsumerRecord[bytes, bytes]]) -> list[Output]:
        """The batch in one transaction; the records it cannot apply come back as dead letters."""
        letters: list[Output] = []
        started = time.perf_counter()
        try:
            async with self.sessions() as session, session.begin():
                for record in records:
                    try:
                        async with session.begin_nested():
                            await self._apply(session, record)
                        self.metrics.messages.labels(record.topic, "projected").inc()
                    except FacestreamError as exc:
                        letters.append(self._dead_letter(record, exc))
                    except DBAPIError as exc:  # the savepoint is rolled back: the batch goes on
                        why = refused_data(exc)
                        if why is None:
                            raise
                        error = FacestreamError(ErrorCode.INVALID_MESSAGE, f"the database refused it: {why}")
                        letters.append(self._dead_letter(record, error))
        except DATABASE_AWAY:
            self.metrics.errors.labels("projector", "database_unavailable").inc()
            raise
        self.metrics.db_ops.labels("project_batch").observe(time.perf_counter() - started)
        return letters

    def _dead_letter(self, record: ConsumerRecord[bytes, bytes], error: FacestreamError) -> Output:
        self.metrics.messages.labels(record.topic, "dead_letter").inc()
        return dead_letter_for(record, error, stage="projector", topics=self.settings.topics)

    async def _apply_erasure(
        self, session: AsyncSession, record: ConsumerRecord[bytes, bytes], coords: dict[str, Any]
    ) -> None:
        """The ledger's PersonErased deletes the rows; a request is not yet an erasure, a
        FaceErased's rows go with its tombstone on the embeddings topic, and a gallery's rows
        went with its GalleryDeleted on the galleries topic."""
        if event_type(record) in (ErasureRequested.__name__, FaceErased.__name__, GalleryErased.__name__):
            return
        erased = decode(record.value, PersonErased)
        fact = erased.payload
        if not fact.found:
            return
        await projection.apply_person_removed(
            session,
            event_id=erased.event_id,
            gallery=fact.gallery,
            person_id=fact.person_id,
            erasure_id=fact.erasure_id,
            barrier=fact.barrier,
            outcomes_barrier=fact.outcomes_barrier,
            at=erased.time,
            **coords,
        )

    async def _apply_gallery(
        self, session: AsyncSession, record: ConsumerRecord[bytes, bytes], coords: dict[str, Any]
    ) -> None:
        """Key = gallery id; a definition upserts its row, a deletion drops its rows, a
        tombstone removes it."""
        if record.value is None:
            await projection.apply_gallery_removed(
                session,
                event_id=projection.record_event_id(record.topic, record.partition, record.offset),
                gallery=key_text(record.key),
                **coords,
            )
        elif event_type(record) == GalleryDeleted.__name__:
            deleted = decode(record.value, GalleryDeleted)
            await projection.apply_gallery_deleted(
                session, event_id=deleted.event_id, fact=deleted.payload, at=deleted.time, **coords
            )
        else:
            defined = decode(record.value, GalleryDefined)
            await projection.apply_gallery_defined(
                session, event_id=defined.event_id, fact=defined.payload, at=defined.time, **coords
            )

    async def _apply(self, session: AsyncSession, record: ConsumerRecord[bytes, bytes]) -> None:
        coords = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
        topics = self.settings.topics
        if record.topic == topics.embeddings and record.value is None:
            await projection.apply_face_removed(
                session,
                event_id=projection.record_event_id(record.topic, record.partition, record.offset),
                face_id=key_text(record.key),
                **coords,
            )
        elif record.topic == topics.embeddings:
            embedded = decode(record.value, FaceEmbedded)
            await projection.apply_face_embedded(
                session,
                event_id=embedded.event_id,
                fact=embedded.payload,
                at=embedded.time,
                **coords,
            )
        elif record.topic == topics.erasures:
            await self._apply_erasure(session, record, coords)
        elif record.topic == topics.galleries:
            await self._apply_gallery(session, record, coords)
        else:
            enrolled = decode(record.value, ImageEnrolled)
            await projection.apply_image_enrolled(
                session,
                event_id=enrolled.event_id,
                fact=enrolled.payload,
                at=enrolled.time,
                **coords,
            )
