"""Reading a whole topic, from its beginning and on, into what a process keeps in memory
(replica heartbeats, the erasure ledger, the galleries), one ``core.consume`` step at a time:
a broker hiccup is retried, a record that cannot be applied is logged and passed, never fatal."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from core.consume import ConsumerStep, Record, positions
from core.kafka import make_consumer, partitions_of
from core.settings import Settings


class TopicFollower:
    """Every record of every partition of `topic`, in partition order, handed to `apply`."""

    def __init__(self, settings: Settings, topic: str, apply: Callable[[Any], None]) -> None:
        self.settings = settings
        self.topic = topic
        self.apply = apply
        self._task: asyncio.Task[None] | None = None
        self._next: dict[int, int] = {}  # partition -> next offset to apply, once applied
        self._progress = asyncio.Condition()

    async def start(self) -> None:
        self.consumer: AIOKafkaConsumer = make_consumer(self.settings, group_id=None)
        await self.consumer.start()
        partitions = [TopicPartition(self.topic, p) for p in await partitions_of(self.consumer, self.topic)]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_beginning(*partitions)
        self._partitions = partitions
        self._task = asyncio.create_task(self._follow(), name=f"follow-{self.topic}")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.consumer.stop()

    async def _follow(self) -> None:
        step = ConsumerStep(consumer=self.consumer, handle=self._apply_all, stage=f"follow-{self.topic}")
        while True:
            await step.once()
            self._next = await positions(self.consumer)
            async with self._progress:
                self._progress.notify_all()

    async def _apply_all(self, records: list[Record]) -> list[object]:
        for record in records:
            self.apply(record)
        return []

    async def read_to_end(self, timeout_s: float = 10.0) -> None:
        """Return once every record on the topic when called has been applied."""
        ends = await self.consumer.end_offsets(self._partitions)

        def done() -> bool:
            return all(self._next.get(tp.partition, 0) >= end for tp, end in ends.items() if end > 0)

        async with self._progress:
            await asyncio.wait_for(self._progress.wait_for(done), timeout_s)
