"""Status publishing: what a replica holds and how far behind it is, on the status topic and in
the metrics. Reads the index state; never takes a lock."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition

from core.metrics import Metrics
from core.settings import Settings
from schemas.envelope import Envelope
from schemas.events import ReplicaStatus
from streams.handlers.output import Output
from streams.producing import Sender, send_all, send_tombstones
from streams.replica_state import ReplicaState


class StatusPublisher:
    def __init__(self, settings: Settings, metrics: Metrics, model_id: str, state: ReplicaState) -> None:
        self.settings = settings
        self.metrics = metrics
        self.model_id = model_id
        self.state = state

    def status(self) -> ReplicaStatus:
        state = self.state
        return ReplicaStatus(
            replica_id=self.settings.replica_id,
            group=self.settings.replica_group,
            ready=state.ready.is_set(),
            size=len(state),
            gallery_sizes=state.sizes(),
            model=self.model_id,
            backend=self.settings.index_backend,
            applied_offsets=dict(state.applied),
            end_offsets=dict(state.end_offsets),
            lag=state.lag,
            restored_from=state.restored_from,
            snapshot_offsets=dict(state.snapshot_offsets),
            partitions=sorted(state.target),
            total_partitions=state.total_partitions,
        )

    async def run(self, producer: Sender, log_consumer: AIOKafkaConsumer) -> None:
        partitions: list[TopicPartition] = list(log_consumer.assignment())
        while True:
            ends = await log_consumer.end_offsets(partitions)
            self.state.end_offsets = {tp.partition: off for tp, off in ends.items()}
            await self.publish(producer)
            await asyncio.sleep(self.settings.status_interval_s)

    async def publish(self, producer: Sender) -> None:
        envelope = Envelope.wrap(self.status(), correlation_id=self.settings.replica_id)
        topic, key = self.settings.topics.replica_status, self.settings.replica_id
        await send_all(producer, [Output(topic=topic, key=key, envelope=envelope)])

    async def leave(self, producer: Sender) -> None:
        """A tombstone: a replica that left cleanly is not counted as a stale member."""
        await send_tombstones(producer, self.settings.topics.replica_status, [self.settings.replica_id])

    def observe(self) -> None:
        replica, state = self.settings.replica_id, self.state
        self.metrics.index_size.labels(replica).set(len(state))
        self.metrics.replica_lag.labels(replica).set(state.lag)
        for partition, offset in state.applied.items():
            self.metrics.applied_offset.labels(replica, str(partition)).set(offset)
