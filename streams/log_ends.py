"""Where a topic's partitions end right now: the barrier an erasure is ordered against."""

from __future__ import annotations

from typing import Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition

from core.kafka import make_consumer, partitions_of
from core.settings import Settings


class LogEnds(Protocol):
    async def of(self, topic: str) -> dict[int, int]: ...


class KafkaLogEnds:
    """End offsets (high-water marks) read with a consumer of no group, started on first use
    and kept for the worker's life: everything acknowledged with acks=all before the call lies
    below them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._consumer: AIOKafkaConsumer | None = None

    async def of(self, topic: str) -> dict[int, int]:
        if self._consumer is None:
            consumer = make_consumer(self.settings, group_id=None)
            await consumer.start()
            self._consumer = consumer
        partitions = [TopicPartition(topic, p) for p in await partitions_of(self._consumer, topic)]
        ends = await self._consumer.end_offsets(partitions)
        return {tp.partition: offset for tp, offset in ends.items()}
