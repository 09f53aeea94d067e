"""The eraser: turns erasure commands into tombstones, knowing each person's faces from the log.

It follows every partition of the embeddings log (keys and headers only) into a
`FaceOwners` view, and consumes erasure requests in a consumer group. An ErasePerson arrives
after the enroll worker ordered it behind the person's enrollments, with the log positions
they lie below; the eraser waits until its view has read that far, tombstones every face of
the person below those positions on the embeddings and retained-images topics, then records
a PersonErased fact on the erasure ledger and only then commits the request. A crash before
the commit repeats the erasure: tombstones are idempotent. No database is involved.

It also follows the galleries topic. EraseGallery (sent once the gallery is marked deleting)
tombstones every face of the gallery the log holds, then the gallery's own key; and any face
that reaches the log for a gallery that does not exist or is being deleted (an enrollment
admitted just before the deletion) is tombstoned as it arrives: the log only keeps faces of
live galleries.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord

from core.consume import positions
from core.errors import FacestreamError
from core.gallery_catalog import GalleryCatalog
from core.kafka import decode, event_type, header_map, key_text, make_consumer, make_producer, partitions_of
from core.logging import get_logger
from core.metrics import Metrics
from core.settings import Settings
from schemas.events import DEFAULT_GALLERY, EraseFace, EraseGallery, ErasePerson
from streams.face_owners import FaceOwners, Placement
from streams.handlers import erasure as handlers
from streams.handlers.dead_letter import dead_letter_for
from streams.handlers.output import Output, traced
from streams.producing import producing_step, send_all, send_tombstones

log = get_logger(__name__)


class Eraser:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.owners = FaceOwners()
        self.galleries = GalleryCatalog(settings)
        self.positions: dict[int, int] = {}
        self.advanced = asyncio.Condition()

    async def run(self) -> None:
        topics = self.settings.topics
        # aiokafka clients bind to the running loop: create them inside it.
        self.producer: AIOKafkaProducer = make_producer(self.settings)
        self.log_consumer: AIOKafkaConsumer = make_consumer(self.settings, group_id=None)
        self.requests: AIOKafkaConsumer = make_consumer(
            self.settings, topics.erasure_requests, group_id=f"{self.settings.topic_prefix}.eraser"
        )
        await self.producer.start()
        await self.galleries.start()
        await self.log_consumer.start()
        partitions = [
            TopicPartition(topics.embeddings, p)
            for p in await partitions_of(self.log_consumer, topics.embeddings)
        ]
        self.log_consumer.assign(partitions)
        await self.log_consumer.seek_to_beginning(*partitions)
        await self.requests.start()
        serve = producing_step(
            self.requests,
            self.producer,
            self._serve,
            stage="eraser",
            topics=topics,
            commit=True,
            max_records=100,
        )
        tasks = [
            asyncio.create_task(self._follow_log(), name="follow-log"),
            asyncio.create_task(serve.run(), name="serve-erasures"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self.requests.stop()
            await self.log_consumer.stop()
            await self.galleries.stop()
            await self.producer.stop()

    # --- the view of the log

    async def _follow_log(self) -> None:
        step = producing_step(
            self.log_consumer,
            self.producer,
            self._view,
            stage="eraser",
            topics=self.settings.topics,
            max_records=5000,
        )
        while True:
            await step.once()
            # Positions only once the batch is in the view: requests wait on them.
            self.positions.update(await positions(self.log_consumer))
            async with self.advanced:
                self.advanced.notify_all()

    async def _view(self, records: list[ConsumerRecord[bytes, bytes]]) -> list[Output]:
        """Records of the log into the view; a face of a gallery that does not live is
        tombstoned; dead letters are returned."""
        letters: list[Output] = []
        orphans: list[str] = []
        for record in records:
            try:
                placement = self.owners.apply(record)
            except FacestreamError as exc:
                letters.append(dead_letter_for(record, exc, stage="eraser", topics=self.settings.topics))
                continue
            if placement is not None and not await self._lives(placement):
                orphans.append(key_text(record.key))
        if orphans:
            log.info("orphan_faces_erased", faces=len(orphans))
            await self._tombstone(orphans)
        return letters

    async def _lives(self, placement: Placement) -> bool:
        if placement.gallery == DEFAULT_GALLERY:
            return True
        gallery = await self.galleries.lookup(placement.gallery)
        return gallery is not None and gallery.state == "active"

    async def _read_up_to(self, barrier: dict[int, int]) -> None:
        """Until the view holds every record below `barrier` (end offsets of the log)."""

        def reached() -> bool:
            return all(self.positions.get(p, 0) >= offset for p, offset in barrier.items())

        async with self.advanced:
            await self.advanced.wait_for(reached)

    async def _log_ends(self) -> dict[int, int]:
        partitions = list(self.log_consumer.assignment())
        ends = await self.log_consumer.end_offsets(partitions)
        return {tp.partition: offset for tp, offset in ends.items()}

    # --- requests

    async def _serve(self, records: list[ConsumerRecord[bytes, bytes]]) -> list[Output]:
        # One request's tombstones and fact are on the log before the next request is handled.
        for record in sorted(records, key=lambda r: (r.partition, r.offset)):
            await send_all(self.producer, await self._handle(record))
        return []

    async def _handle(self, record: ConsumerRecord[bytes, bytes]) -> list[Output]:
        topics = self.settings.topics
        kind = event_type(record)
        try:
            if kind == EraseFace.__name__:
                outputs = [await self._erase_face(decode(record.value, EraseFace))]
            elif kind == EraseGallery.__name__:
                outputs = await self._erase_gallery(decode(record.value, EraseGallery))
            else:
                outputs = [await self._erase_person(decode(record.value, ErasePerson))]
        except FacestreamError as exc:
            self.metrics.errors.labels("eraser", exc.code.value).inc()
            return [dead_letter_for(record, exc, stage="eraser", topics=topics)]
        self.metrics.messages.labels(record.topic, "erased").inc()
        return traced(outputs, header_map(record.headers))

    async def _erase_person(self, command: Any) -> Output:
        payload: ErasePerson = command.payload
        # An ErasePerson that skipped the enroll worker carries no barrier: order it against
        # what the log holds now.
        barrier = payload.barrier or await self._log_ends()
        await self._read_up_to(barrier)
        face_ids = self.owners.faces_of(payload.person_id, below=barrier, gallery=payload.gallery)
        tombstones = await self._tombstone(face_ids)
        log.info(
            "person_erased",
            correlation_id=command.correlation_id,
            person_id=payload.person_id,
            faces=len(face_ids),
            tombstones=tombstones,
        )
        return handlers.person_erased(
            command, face_ids=face_ids, tombstones=tombstones, topics=self.settings.topics
        )

    async def _erase_face(self, command: Any) -> Output:
        payload: EraseFace = command.payload
        await self._read_up_to(await self._log_ends())
        placement = self.owners.placement_of(payload.face_id)
        # A face of another gallery is not this request's to erase: as if the log held none.
        person_id = placement.person_id if placement and placement.gallery == payload.gallery else None
        tombstones = await self._tombstone([payload.face_id]) if person_id is not None else {}
        log.info(
            "face_erased",
            correlation_id=command.correlation_id,
            face_id=payload.face_id,
            found=bool(tombstones),
        )
        return handlers.face_erased(
            command, person_id=person_id, tombstones=tombstones, topics=self.settings.topics
        )

    async def _erase_gallery(self, command: Any) -> list[Output]:
        payload: EraseGallery = command.payload
        barrier = await self._log_ends()
        await self._read_up_to(barrier)
        face_ids = self.owners.faces_in(payload.gallery)
        tombstones = await self._tombstone(face_ids)
        log.info(
            "gallery_erased",
            correlation_id=command.correlation_id,
            gallery=payload.gallery,
            faces=len(face_ids),
            tombstones=tombstones,
        )
        outputs = handlers.gallery_erased(
            command,
            face_count=len(face_ids),
            tombstones=tombstones,
            barrier=barrier,
            topics=self.settings.topics,
        )
        # The ledger first: once the gallery's key is gone its id may be taken again.
        await send_all(self.producer, outputs)
        await send_tombstones(self.producer, self.settings.topics.galleries, [payload.gallery])
        return []

    async def _tombstone(self, face_ids: list[str]) -> dict[int, int]:
        """Images first, then embeddings: the receipt's offsets are the embeddings'."""
        if not face_ids:
            return {}
        await send_tombstones(self.producer, self.settings.topics.enrollment_images, face_ids)
        return handlers.last_offsets(
            await send_tombstones(self.producer, self.settings.topics.embeddings, face_ids)
        )
