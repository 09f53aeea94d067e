"""Following the embeddings log: restore from the latest usable snapshot, then apply the tail.

Startup loads the snapshot (every gallery's index plus the log offsets they reflect); the tail
it does not cover (all of the log without a usable snapshot) is read in bulk with librdkafka
(``bulk_log``, ``bulk_fold``) up to the high-water marks seen at startup; the index is then
ready, and the live tail is followed with aiokafka. Records the index cannot hold are
dead-lettered, never fatal. A record of a gallery not held yet makes the follower look the
gallery up (``GalleryCatalog``); a gallery unknown or being deleted is not indexed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from core.consume import positions
from core.errors import FacestreamError
from core.galleries import Gallery
from core.kafka import header_map
from core.logging import get_logger
from core.metrics import Metrics
from core.settings import Settings
from index import registry
from index.labelled import LabelledIndex
from index.snapshot import SnapshotUnusable, read_snapshot
from schemas.events import DEFAULT_GALLERY, GalleryDefined, ModelInfo
from streams import bulk_readers
from streams.bulk_fold import RecordBatch, Scratch, as_batch, fold_bulk, route
from streams.bulk_log import partitions
from streams.handlers.dead_letter import dead_letter, dead_letter_for
from streams.handlers.output import Output
from streams.log_fold import PendingChanges
from streams.producing import Sender, producing_step, send_all
from streams.replica_state import GalleryIndex, ReplicaState

log = get_logger(__name__)

# A pack's model (id and dim), or None for a pack this process does not know.
PackModels = Callable[[str], ModelInfo | None]


class Catalog(Protocol):
    async def lookup(self, gallery: str) -> Gallery | None: ...


class LogFollower:
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        model: ModelInfo,
        state: ReplicaState,
        *,
        catalog: Catalog | None = None,
        models: PackModels | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.model = model
        self.state = state
        self.catalog = catalog
        self.models = models or (lambda pack: model if pack == settings.model_pack else None)
        self.topic = settings.topics.embeddings
        self.snapshot_dir = settings.index_dir / settings.replica_id

    # --- the galleries' indexes

    def new_index(self, definition: GalleryDefined) -> GalleryIndex | None:
        """An empty index for a gallery, as its definition says; None when its pack is unknown."""
        if definition.gallery == DEFAULT_GALLERY:
            model: ModelInfo | None = self.model
        else:
            model = self.models(definition.pack)
        if model is None:
            log.warning("gallery_pack_unknown", gallery=definition.gallery, pack=definition.pack)
            return None
        spec = definition.index
        backend = spec.backend or self.settings.index_backend
        options: dict[str, Any] = dict(spec.options)
        if not options and backend == self.settings.index_backend:
            options = dict(self.settings.index_options)
        index = registry.create(backend, dim=model.dim, model_id=model.id, **options)
        return GalleryIndex(index, generation=definition.generation, options=options)

    def default_index(self) -> GalleryIndex:
        held = self.new_index(GalleryDefined(gallery=DEFAULT_GALLERY, pack=self.settings.model_pack))
        assert held is not None
        return held

    async def hold_galleries(self, names: set[str]) -> None:
        """Look up the galleries named by records that are not held yet; hold the active ones."""
        for name in names - self.state.galleries.keys():
            found = await self.catalog.lookup(name) if self.catalog is not None else None
            if found is None or found.state != "active":
                continue
            held = self.new_index(found.definition)
            if held is not None:
                self.state.hold(name, held)
                log.info("gallery_held", gallery=name, backend=held.index.backend)

    # --- restoring

    def load_snapshot(self) -> None:
        """Replace the state's indexes with the live snapshot's, if there is a usable one."""
        try:
            loaded = read_snapshot(
                self.snapshot_dir,
                expected_model_id=self.model.id,
                expected_topic=self.topic,
                expected_backend=self.settings.index_backend,
            )
        except SnapshotUnusable as exc:
            log.warning("snapshot_unusable", reason=str(exc), action="rebuild from the log")
            return
        state = self.state
        entries = loaded.manifest.galleries
        state.restore(
            {
                g: GalleryIndex(
                    index,
                    generation=entries[g].generation,
                    options=dict(entries[g].options),
                )
                for g, index in loaded.indexes.items()
            }
        )
        state.applied = dict(loaded.offsets)
        state.snapshot_offsets = dict(loaded.offsets)
        state.restored_from = "snapshot"
        log.info("snapshot_loaded", sizes=state.sizes(), offsets=state.applied)

    async def restore(self, consumer: AIOKafkaConsumer, producer: Sender | None = None) -> None:
        """Load the snapshot, read the tail it does not cover in bulk (dead letters through
        ``producer``), and position ``consumer`` at the end of that read."""
        await asyncio.to_thread(self.load_snapshot)  # the loop goes on meanwhile (the catalog)
        if DEFAULT_GALLERY not in self.state.galleries:
            self.state.hold(DEFAULT_GALLERY, self.default_index())
        partitions = await self._partitions(consumer)
        consumer.assign(partitions)
        beginnings = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        self.state.target = {tp.partition: off for tp, off in ends.items()}
        self.state.end_offsets = dict(self.state.target)
        # Compaction may have removed the records a snapshot stopped at: never before the start.
        starts = {
            tp.partition: max(self.state.applied.get(tp.partition, 0), beginnings[tp]) for tp in partitions
        }
        log.info("restore_started", source=self.state.restored_from, target=self.state.target)
        await self.read_in_bulk(starts, dict(self.state.target), producer)
        for tp in partitions:
            consumer.seek(tp, max(self.state.applied.get(tp.partition, 0), beginnings[tp]))
        self._announce_ready()

    async def read_in_bulk(
        self, starts: dict[int, int], ends: dict[int, int], producer: Sender | None = None
    ) -> None:
        """Apply the records between ``starts`` and ``ends`` (the restore's tail), in bulk."""
        coming = sum(max(end - starts.get(p, 0), 0) for p, end in ends.items())
        held = self.state.galleries.get(DEFAULT_GALLERY)
        alone = held is not None and len(self.state.galleries) == 1
        if alone and coming and held is not None and isinstance(held.index, LabelledIndex):
            # One gallery: room for the whole read at once. Not for an empty tail: a snapshot's
            # mapped rows stay mapped until a change needs them copied.
            held.index.reserve(coming)
        parts = bulk_readers.read_parts(self.settings, self.topic, starts, ends, self.state.wanted())
        try:
            reached = dict(starts)
            scratch = Scratch()
            while (part := await asyncio.to_thread(parts.next)) is not None:
                letters: list[Output] = []
                if part.raw is not None:
                    batch = part.raw
                    routing = route(batch)
                    await self.hold_galleries(routing.named(batch))
                    folded = fold_bulk(batch, self.state.expect, scratch, routing)
                    letters = [self._dead_letter(batch, position, exc) for position, exc in folded.errors]
                else:
                    assert part.folded is not None
                    folded = part.folded
                reached.update(part.reached)
                await self.state.apply(folded.batch, reached)
                if letters and producer is not None:
                    await send_all(producer, letters)
        finally:
            parts.close()
        self.state.applied.update({p: max(self.state.applied.get(p, 0), e) for p, e in ends.items()})

    def _dead_letter(self, batch: RecordBatch, position: int, exc: FacestreamError) -> Output:
        self.metrics.errors.labels("replica", exc.code.value).inc()
        return dead_letter(
            topic=self.topic,
            partition=batch.partitions[position],
            offset=batch.offsets[position],
            key=batch.keys[position],
            value=batch.values[position],
            headers=header_map(batch.headers[position]),
            error=exc,
            stage="replica",
            topics=self.settings.topics,
        )

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        """Every partition of the log, or this shard's share of them."""
        wanted = self.settings.shard_partitions
        found = await asyncio.to_thread(partitions, self.settings, self.topic)  # absent: waits, or fails
        self.state.total_partitions = len(found)
        return [TopicPartition(self.topic, p) for p in found if wanted is None or p in wanted]

    # --- the live tail

    async def run(self, consumer: AIOKafkaConsumer, producer: Sender, *, polled: Callable[[], None]) -> None:
        """Apply the log as it grows; ``polled`` after every poll, records or none."""
        step = producing_step(
            consumer,
            producer,
            self.apply_tail,
            stage="replica",
            topics=self.settings.topics,
            max_records=2000,
        )
        while True:
            await step.once()
            # Offsets only once the batch is applied or dead-lettered: read-your-writes waits on them.
            await self.state.apply(PendingChanges(), await positions(consumer))
            self._announce_ready()
            polled()

    async def apply_tail(self, records: list[ConsumerRecord[bytes, bytes]]) -> list[Output]:
        """Apply records of the live tail; their dead letters are returned."""
        batch = as_batch(records)
        await self.hold_galleries(route(batch).named(batch))
        pending = PendingChanges()
        letters: list[Output] = []
        for record in records:
            self.fold(record, pending, letters)
        await self.state.apply(pending, {})
        return letters

    def fold(
        self, record: ConsumerRecord[bytes, bytes], pending: PendingChanges, letters: list[Output]
    ) -> None:
        if DEFAULT_GALLERY not in self.state.galleries:
            self.state.hold(DEFAULT_GALLERY, self.default_index())
        try:
            pending.fold(record, expect=self.state.expect)
        except FacestreamError as exc:
            self.metrics.errors.labels("replica", exc.code.value).inc()
            letters.append(dead_letter_for(record, exc, stage="replica", topics=self.settings.topics))

    def _announce_ready(self) -> None:
        if self.state.check_ready():
            log.info("replica_ready", size=len(self.state), applied=self.state.applied)
