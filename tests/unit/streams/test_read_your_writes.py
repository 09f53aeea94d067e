"""A replica answers a read-your-writes query only once it has applied the requested offsets."""

from __future__ import annotations

import asyncio

from engine.fake import DeterministicFakeEngine
from index import registry
from streams.log_fold import PendingChanges
from streams.replica_state import ReplicaState


def _state() -> ReplicaState:
    model = DeterministicFakeEngine().model
    state = ReplicaState(index=registry.create("faiss-flat", dim=model.dim, model_id=model.id))
    state.target = {0: 10, 1: 10}  # this replica holds partitions 0 and 1
    state.applied = {0: 5, 1: 10}
    return state


async def test_waits_until_applied() -> None:
    state = _state()

    async def apply_later() -> None:
        await asyncio.sleep(0.05)
        await state.apply(PendingChanges(), {0: 8})

    applier = asyncio.create_task(apply_later())
    assert not state.has_applied({0: 7})
    assert await state.caught_up({0: 7}, timeout_s=5)
    await applier


async def test_gives_up_after_the_timeout() -> None:
    assert not await _state().caught_up({0: 7}, timeout_s=0.05)


async def test_offsets_of_other_shards_partitions_are_not_waited_for() -> None:
    state = _state()
    assert state.has_applied({1: 9, 2: 1_000})
    assert await state.caught_up({1: 9, 2: 1_000}, timeout_s=0.05)
