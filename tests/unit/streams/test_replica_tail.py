"""The replica's live tail on the consumer step: a poll's records applied, its poison
dead-lettered, and the positions it reached recorded (a partition it brought nothing of too)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import numpy as np

from streams.replica_log import LogFollower
from streams.replica_state import ReplicaState
from tests.unit.core.factories import Assigned
from tests.unit.streams.factories import FakeMessage, FakeSender, metrics, settings
from tests.unit.streams.galleries_factories import MODEL, TOPIC, fact, record, unit


async def test_a_poll_is_applied_its_poison_dead_lettered_then_its_positions_recorded(
    tmp_path: Path,
) -> None:
    config = settings(index_dir=tmp_path / "index", model_pack=MODEL.pack)
    state = ReplicaState()
    follower = LogFollower(config, metrics(), MODEL, state)
    state.hold("default", follower.default_index())
    consumer = Assigned(TOPIC, beginnings={0: 0, 1: 0})
    rng = np.random.default_rng(3)
    consumer.fetched = [
        record(0, fact("f1", "alice", unit(rng))),
        FakeMessage(TOPIC, 0, 1, b"f2", b"garbage"),
    ]
    sender = FakeSender()
    seen: list[dict[int, int]] = []
    polled = asyncio.Event()

    def observe() -> None:
        seen.append(dict(state.applied))
        polled.set()

    task = asyncio.create_task(follower.run(consumer, sender, polled=observe))  # type: ignore[arg-type]
    try:
        await asyncio.wait_for(polled.wait(), 5)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert seen[0] == {0: 2, 1: 0}
    assert state.sizes() == {"default": 1}
    assert [(s.topic, s.key_str) for s in sender.sent] == [(config.topics.dead_letter, f"{TOPIC}:0:1")]
