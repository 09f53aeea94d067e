"""TopicFollower on the consumer step: a record its view cannot apply is passed, and
read_to_end goes by the consumer's positions (a partition emptied by retention is at its end)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from aiokafka import TopicPartition

from core import batch_guard
from core.follow import TopicFollower
from tests.unit.core.test_consume import Consumer, record
from tests.unit.streams.factories import settings

TOPIC = "t"


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    real_sleep = asyncio.sleep

    async def instant(_: float) -> None:
        await real_sleep(0)

    monkeypatch.setattr(batch_guard.asyncio, "sleep", instant)


class Assigned(Consumer):
    """Consumer with partitions assigned: positions move past what a poll hands out."""

    def __init__(self, beginnings: dict[int, int], ends: dict[int, int]) -> None:
        super().__init__([])
        self.next = dict(beginnings)
        self.ends = ends

    async def getmany(self, *partitions: Any, timeout_ms: int = 0, max_records: int | None = None) -> Any:
        await asyncio.sleep(0)  # an idle poll waits, as aiokafka's does
        fetched = await super().getmany(timeout_ms=timeout_ms, max_records=max_records)
        for tp, records in fetched.items():
            self.next[tp.partition] = records[-1].offset + 1
        return fetched

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(TOPIC, p) for p in self.next}

    async def position(self, tp: TopicPartition) -> int:
        return self.next[tp.partition]

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.ends[tp.partition] for tp in partitions}


async def test_poison_is_passed_and_read_to_end_goes_by_positions() -> None:
    applied: list[int] = []

    def apply(r: Any) -> None:
        if r.value == b"poison":
            raise ValueError("poison")
        applied.append(r.offset)

    follower = TopicFollower(settings(), TOPIC, apply)
    consumer = Assigned(beginnings={0: 0, 1: 40}, ends={0: 3, 1: 40})  # partition 1: all expired
    consumer.fetched = [record(0), record(1, value=b"poison"), record(2)]
    follower.consumer = consumer  # type: ignore[assignment]
    follower._partitions = [TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)]
    task = asyncio.create_task(follower._follow())
    try:
        await follower.read_to_end(timeout_s=5)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert set(applied) == {0, 2}  # a retried batch is applied again: views are idempotent
