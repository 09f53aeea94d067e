"""Factories for the consumer tests: aiokafka records and a consumer that hands out what it
has fetched."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError
from aiokafka.structs import ConsumerRecord

from core.consume import Record


def record(offset: int, partition: int = 0, value: bytes = b"ok") -> Record:
    return ConsumerRecord(
        topic="t",
        partition=partition,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=None,
        value=value,
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=len(value),
        headers=[],
    )


class Consumer:
    """aiokafka's consumer shape: a poll hands out what is already fetched, up to max_records."""

    def __init__(self, events: list[Any], *, poll_failures: int = 0, commit_failures: int = 0) -> None:
        self.events = events
        self.fetched: list[Record] = []
        self.poll_failures = poll_failures
        self.commit_failures = commit_failures

    async def getmany(
        self, *partitions: Any, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[Any, list[Record]]:
        if self.poll_failures:
            self.poll_failures -= 1
            raise KafkaConnectionError()
        taken, self.fetched = self.fetched[:max_records], self.fetched[max_records:]
        self.events.append(("poll", len(taken)))
        by_partition: dict[Any, list[Record]] = {}
        for r in taken:
            by_partition.setdefault(TopicPartition(r.topic, r.partition), []).append(r)
        return by_partition

    async def commit(self) -> None:
        if self.commit_failures:
            self.commit_failures -= 1
            self.events.append("commit_failed")
            raise KafkaConnectionError()
        self.events.append("commit")


class Assigned(Consumer):
    """Consumer with partitions assigned: positions move past what a poll hands out."""

    def __init__(self, topic: str, *, beginnings: dict[int, int], ends: dict[int, int] | None = None) -> None:
        super().__init__([])
        self.topic = topic
        self.next = dict(beginnings)
        self.ends = ends or {}

    async def getmany(self, *partitions: Any, timeout_ms: int = 0, max_records: int | None = None) -> Any:
        await asyncio.sleep(0)  # an idle poll waits, as aiokafka's does
        fetched = await super().getmany(timeout_ms=timeout_ms, max_records=max_records)
        for tp, records in fetched.items():
            self.next[tp.partition] = records[-1].offset + 1
        return fetched

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(self.topic, p) for p in self.next}

    async def position(self, tp: TopicPartition) -> int:
        return self.next[tp.partition]

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.ends[tp.partition] for tp in partitions}
