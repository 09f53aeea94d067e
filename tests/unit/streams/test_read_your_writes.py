"""A replica answers a read-your-writes query only once it has applied the requested offsets."""

from __future__ import annotations

import asyncio

from engine.fake import DeterministicFakeEngine
from streams.replica import IndexReplica
from tests.unit.streams.factories import metrics, settings


def _replica(timeout_s: float) -> IndexReplica:
    replica = IndexReplica(
        settings(read_your_writes_timeout_s=timeout_s), metrics(), DeterministicFakeEngine().model
    )
    replica.target = {0: 10, 1: 10}  # this replica holds partitions 0 and 1
    replica.applied = {0: 5, 1: 10}
    return replica


async def test_waits_until_applied() -> None:
    replica = _replica(timeout_s=5)

    async def apply_later() -> None:
        await asyncio.sleep(0.05)
        replica.applied[0] = 8
        async with replica.applied_changed:
            replica.applied_changed.notify_all()

    applier = asyncio.create_task(apply_later())
    assert await replica._caught_up({0: 7})
    await applier


async def test_gives_up_after_the_timeout() -> None:
    assert not await _replica(timeout_s=0.05)._caught_up({0: 7})


async def test_offsets_of_other_shards_partitions_are_not_waited_for() -> None:
    assert await _replica(timeout_s=0.05)._caught_up({1: 9, 2: 1_000})
