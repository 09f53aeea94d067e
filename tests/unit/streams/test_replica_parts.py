"""The replica's pieces without Kafka: batched serving, snapshots that never hold up a search."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from core.settings import Settings
from engine.fake import DeterministicFakeEngine
from index import read_snapshot, registry
from schemas.events import FaceSearched, IdentifyQuery
from streams.log_fold import PendingChanges
from streams.replica import IndexReplica
from streams.replica_snapshot import Snapshotter
from streams.replica_state import SearchResult
from tests.unit.streams.factories import FakeMessage, metrics, settings
from tests.unit.streams.test_end_to_end import as_records, enroll_everyone, identify


@pytest.fixture
def config(tmp_path: Path) -> Settings:
    return settings(threshold=0.5, top_k=3, index_dir=tmp_path / "index", read_your_writes_timeout_s=5)


async def _loaded_replica(config: Settings) -> tuple[IndexReplica, DeterministicFakeEngine]:
    engine = DeterministicFakeEngine()
    replica = IndexReplica(config, metrics(), engine.model)
    pending, letters = PendingChanges(), []  # type: ignore[var-annotated]
    for record in as_records(await enroll_everyone(config, engine), config.topics.embeddings):
        replica.follower.fold(record, pending, letters)  # type: ignore[arg-type]
    replica.state.target = {0: 10}
    await replica.state.apply(pending, {0: 10})
    assert replica.state.ready.is_set()
    return replica, engine


def _count_searches(
    replica: IndexReplica, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[int], asyncio.Event]:
    batches: list[int] = []
    searched = asyncio.Event()
    search = replica.state.search

    async def counting(vectors: np.ndarray, k: int, gallery: str = "default") -> SearchResult:
        batches.append(len(vectors))
        found = await search(vectors, k, gallery)
        searched.set()
        return found

    monkeypatch.setattr(replica.state, "search", counting)
    return batches, searched


def _with_min_offsets(record: FakeMessage, offsets: dict[int, int]) -> FakeMessage:
    from core.kafka import decode

    envelope = decode(record.value, IdentifyQuery)
    payload = envelope.payload.model_copy(update={"min_offsets": offsets})
    value = envelope.model_copy(update={"payload": payload}).model_dump_json().encode()
    return FakeMessage(record.topic, record.partition, record.offset, record.key, value, record.headers)


async def test_the_queries_of_one_poll_are_searched_as_one_batch(
    config: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    replica, engine = await _loaded_replica(config)
    batches, _ = _count_searches(replica, monkeypatch)
    asked = await identify(config, engine, b"FAKE:alice:x", b"FAKE:bob:x", b"FAKE:carol:x")
    outputs = await replica.server.handle(as_records(asked, config.topics.identify_queries))  # type: ignore[arg-type]
    assert batches == [3]
    found = [o.envelope.payload for o in outputs]
    assert all(isinstance(f, FaceSearched) for f in found)
    assert [f.candidates[0].person_id for f in found] == ["alice", "bob", "carol"]  # type: ignore[union-attr]
    # The reply reports the search itself, as measured where it ran.
    assert all(f.timings.search_ms is not None and f.timings.search_ms >= 0 for f in found)  # type: ignore[union-attr]


async def test_a_query_waiting_for_its_writes_does_not_hold_up_the_others(
    config: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    replica, engine = await _loaded_replica(config)
    batches, searched = _count_searches(replica, monkeypatch)
    asked = as_records(
        await identify(config, engine, b"FAKE:alice:x", b"FAKE:bob:x", b"FAKE:carol:x"),
        config.topics.identify_queries,
    )
    asked[0] = _with_min_offsets(asked[0], {0: 11})  # a write this replica has not applied yet

    async def apply_the_write() -> None:
        await searched.wait()  # the others are answered first
        await replica.state.apply(PendingChanges(), {0: 12})

    applier = asyncio.create_task(apply_the_write())
    outputs = await replica.server.handle(asked)  # type: ignore[arg-type]
    await applier
    assert batches == [2, 1]
    assert sorted(o.envelope.payload.candidates[0].person_id for o in outputs) == ["alice", "bob", "carol"]  # type: ignore[union-attr]


async def test_searches_and_applying_go_on_while_a_snapshot_is_written(
    config: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    replica, _ = await _loaded_replica(config)
    state = replica.state
    snapshots = Snapshotter(state, tmp_path / "snap", config.topics.embeddings)
    writing, release = threading.Event(), threading.Event()
    write = snapshots._write

    def slow_write(index: object, offsets: dict[int, int]) -> None:
        writing.set()
        assert release.wait(30), "the test never released the writer"
        write(index, offsets)  # type: ignore[arg-type]

    monkeypatch.setattr(snapshots, "_write", slow_write)
    taking = asyncio.create_task(snapshots.snapshot())
    assert await asyncio.to_thread(writing.wait, 30)
    # The writer is stuck inside the snapshot: a search and a change must still complete.
    probe = np.ones((1, state.index.dim), dtype=np.float32)
    found = await asyncio.wait_for(state.search(probe, 3), 30)
    assert len(found.matches) == 1 and found.gallery_size == 10
    pending = PendingChanges()
    pending.remove(next(iter(replica.follower.state.index.search(probe, 1)[0])).face_id)
    pending.upsert("late-face", "late-person", probe[0] / np.linalg.norm(probe[0]))
    await asyncio.wait_for(state.apply(pending, {0: 12}), 30)
    assert not taking.done() and len(state.index) == 10 and "late-face" in state.index
    release.set()
    assert await taking
    # The snapshot holds the state it was taken in, with the offsets of that state.
    loaded = read_snapshot(
        tmp_path / "snap", expected_model_id=state.index.model_id, expected_topic=config.topics.embeddings
    )
    assert loaded.offsets == {0: 10} and len(loaded.index) == 10 and "late-face" not in loaded.index
    assert state.snapshot_offsets == {0: 10}
    snapshots.close()


async def test_a_restarted_replica_restores_from_its_snapshot(config: Settings) -> None:
    replica, engine = await _loaded_replica(config)
    assert await replica.snapshots.snapshot()
    assert not await replica.snapshots.snapshot()  # nothing changed since
    replica.snapshots.close()
    again = IndexReplica(config, metrics(), engine.model)
    again.follower.load_snapshot()
    assert again.state.restored_from == "snapshot"
    assert again.state.applied == {0: 10} and len(again.state.index) == 10
    assert isinstance(again.state.index, registry.backend_class("faiss-flat"))


async def test_a_stopping_replica_leaves_its_query_group_before_its_last_snapshot(
    config: Settings,
) -> None:
    replica, _ = await _loaded_replica(config)
    order: list[str] = []

    async def server_stop() -> None:
        order.append("left the query group")

    async def leave(producer: object) -> None:
        order.append("status tombstone")

    def write_now() -> None:
        order.append("snapshot")

    async def stopped() -> None:
        order.append("clients stopped")

    replica.server.stop = server_stop  # type: ignore[method-assign]
    replica.publisher.leave = leave  # type: ignore[method-assign]
    replica.snapshots.write_now = write_now  # type: ignore[method-assign]
    client = SimpleNamespace(stop=stopped)
    await replica._shutdown(client, client)  # type: ignore[arg-type]
    assert order == ["left the query group", "status tombstone", "snapshot"] + ["clients stopped"] * 2


async def test_a_backend_that_cannot_freeze_is_saved_with_searches_held(tmp_path: Path) -> None:
    from streams.replica_state import ReplicaState

    index = registry.create("faiss-hnsw", dim=8, model_id="m")
    rng = np.random.default_rng(0)
    index.add([f"f{i}" for i in range(20)], [f"p{i}" for i in range(20)], rng.standard_normal((20, 8)))
    state = ReplicaState(index=index, applied={0: 20}, target={0: 20})
    snapshots = Snapshotter(state, tmp_path / "snap", "topic")
    held: list[bool] = []
    write = snapshots._write

    def spying_write(view: object, offsets: dict[int, int]) -> None:
        held.append(state.index_lock.locked() and state.apply_gate.locked())
        write(view, offsets)  # type: ignore[arg-type]

    snapshots._write = spying_write  # type: ignore[method-assign,assignment]
    assert await snapshots.snapshot()
    snapshots.close()
    assert held == [True]
    loaded = read_snapshot(tmp_path / "snap", expected_model_id="m", expected_topic="topic")
    assert len(loaded.index) == 20 and loaded.offsets == {0: 20}


async def test_a_query_for_a_gallery_not_held_answers_nothing(config: Settings) -> None:
    replica, engine = await _loaded_replica(config)
    asked = as_records(await identify(config, engine, b"FAKE:alice:x"), config.topics.identify_queries)
    from core.kafka import decode

    envelope = decode(asked[0].value, IdentifyQuery)
    payload = envelope.payload.model_copy(update={"gallery": "nowhere"})
    value = envelope.model_copy(update={"payload": payload}).model_dump_json().encode()
    query = FakeMessage(asked[0].topic, 0, 0, asked[0].key, value, asked[0].headers)
    outputs = await replica.server.handle([query])  # type: ignore[list-item]
    found = outputs[0].envelope.payload
    assert isinstance(found, FaceSearched)
    assert found.gallery == "nowhere" and found.candidates == [] and found.gallery_size == 0


async def test_a_snapshot_settles_what_was_written_since_the_last_one(tmp_path: Path) -> None:
    from streams.replica_state import ReplicaState

    index = registry.create("faiss-flat", dim=512, model_id="m")
    rows = np.random.default_rng(0).standard_normal((20_000, 512)).astype(np.float32)
    index.add([f"f{i}" for i in range(20_000)], [f"p{i}" for i in range(20_000)], rows)
    state = ReplicaState(index=index, applied={0: 20_000}, target={0: 20_000})
    snapshots = Snapshotter(state, tmp_path / "snap", "topic")
    assert index._settled == 0  # type: ignore[attr-defined]
    assert await snapshots.snapshot()
    snapshots.close()
    assert index._settled > 0  # type: ignore[attr-defined]


async def test_a_small_search_runs_on_the_loop_and_a_large_one_in_a_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from streams import replica_state
    from streams.replica_state import ReplicaState

    index = registry.create("faiss-flat", dim=8, model_id="m")
    rng = np.random.default_rng(0)
    index.add([f"f{i}" for i in range(100)], [f"p{i}" for i in range(100)], rng.standard_normal((100, 8)))
    state = ReplicaState(index=index, applied={0: 100}, target={0: 100})
    threads: list[str] = []
    search_persons = replica_state.search_persons

    def spying_search(*args: object) -> object:
        threads.append(threading.current_thread().name)
        return search_persons(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(replica_state, "search_persons", spying_search)
    probe = rng.standard_normal((1, 8)).astype(np.float32)
    small = await state.search(probe, 3)
    monkeypatch.setattr(replica_state, "INLINE_SEARCH_SCORES", 99)  # 100 faces x 1 query: over
    large = await state.search(probe, 3)
    assert threads[0] == threading.current_thread().name
    assert threads[1] != threading.current_thread().name
    assert small.matches == large.matches and small.gallery_size == large.gallery_size == 100
