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
from tests.unit.core.factories import Assigned, record
from tests.unit.streams.factories import settings

TOPIC = "t"


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    real_sleep = asyncio.sleep

    async def instant(_: float) -> None:
        await real_sleep(0)

    monkeypatch.setattr(batch_guard.asyncio, "sleep", instant)


async def test_poison_is_passed_and_read_to_end_goes_by_positions() -> None:
    applied: list[int] = []

    def apply(r: Any) -> None:
        if r.value == b"poison":
            raise ValueError("poison")
        applied.append(r.offset)

    follower = TopicFollower(settings(), TOPIC, apply)
    consumer = Assigned(TOPIC, beginnings={0: 0, 1: 40}, ends={0: 3, 1: 40})  # partition 1: all expired
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
