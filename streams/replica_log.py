"""Following the embeddings log: restore from the latest usable snapshot, then apply the tail.

Startup loads the snapshot (the index plus the log offsets it reflects) and seeks each
partition there; without a usable one it reads every partition from the beginning. The index
is ready once it has applied up to the high-water marks seen at startup. Records the index
cannot hold are dead-lettered, never fatal.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord

from core.errors import FacestreamError
from core.kafka import partitions_of
from core.logging import get_logger
from core.metrics import Metrics
from core.settings import Settings
from index.snapshot import SnapshotUnusable, read_snapshot
from schemas.events import ModelInfo
from streams.handlers.dead_letter import dead_letter_for
from streams.handlers.output import Output
from streams.log_fold import PendingChanges
from streams.producing import send_all
from streams.replica_state import ReplicaState

log = get_logger(__name__)


class LogFollower:
    def __init__(self, settings: Settings, metrics: Metrics, model: ModelInfo, state: ReplicaState) -> None:
        self.settings = settings
        self.metrics = metrics
        self.model = model
        self.state = state
        self.topic = settings.topics.embeddings
        self.snapshot_dir = settings.index_dir / settings.replica_id

    def load_snapshot(self) -> None:
        """Replace the state's index with the live snapshot's, if there is a usable one."""
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
        state.index, state.applied = loaded.index, dict(loaded.offsets)
        state.snapshot_offsets = dict(loaded.offsets)
        state.restored_from = "snapshot"
        log.info("snapshot_loaded", size=len(state.index), offsets=state.applied)

    async def restore(self, consumer: AIOKafkaConsumer) -> None:
        """Load the snapshot and position ``consumer`` at the tail it does not cover."""
        self.load_snapshot()
        partitions = await self._partitions(consumer)
        consumer.assign(partitions)
        beginnings = await consumer.beginning_offsets(partitions)
        for tp in partitions:
            start = self.state.applied.get(tp.partition, 0)
            # Compaction may have removed the records a snapshot stopped at: never seek
            # before the log start.
            consumer.seek(tp, max(start, beginnings[tp]))
        ends = await consumer.end_offsets(partitions)
        self.state.target = {tp.partition: off for tp, off in ends.items()}
        self.state.end_offsets = dict(self.state.target)
        log.info("restore_started", source=self.state.restored_from, target=self.state.target)
        self._announce_ready()

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        """Every partition of the log, or this shard's share of them."""
        wanted = self.settings.shard_partitions
        found = await partitions_of(consumer, self.topic)
        self.state.total_partitions = len(found)
        return [TopicPartition(self.topic, p) for p in found if wanted is None or p in wanted]

    async def run(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer) -> None:
        while True:
            await self.step(consumer, producer)

    async def step(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer) -> None:
        batches = await consumer.getmany(timeout_ms=500, max_records=2000)
        pending = PendingChanges()
        letters: list[Output] = []
        for records in batches.values():
            for record in records:
                self.fold(record, pending, letters)
        positions = {tp.partition: await consumer.position(tp) for tp in consumer.assignment()}
        await self.state.apply(pending, positions)
        if letters:
            await send_all(producer, letters)
        self._announce_ready()

    def fold(
        self, record: ConsumerRecord[bytes, bytes], pending: PendingChanges, letters: list[Output]
    ) -> None:
        try:
            pending.fold(record, model_id=self.model.id, dim=self.model.dim)
        except FacestreamError as exc:
            self.metrics.errors.labels("replica", exc.code.value).inc()
            letters.append(dead_letter_for(record, exc, stage="replica", topics=self.settings.topics))

    def _announce_ready(self) -> None:
        if self.state.check_ready():
            log.info("replica_ready", size=len(self.state.index), applied=self.state.applied)
