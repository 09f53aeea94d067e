"""The bulk rebuild against the real broker: `replay` of one gallery and a replica's restore read
the log with librdkafka and fold it as the per-record path would, in this process and in reader
processes alike."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from core.settings import Settings
from core.topics import ensure_topics, topic_specs
from streams import bulk_readers
from streams.bulk_log import cut_ends
from streams.bulk_readers import ParallelCut
from streams.replay import build_from_log
from streams.replica_log import LogFollower
from streams.replica_state import ReplicaState
from tests.unit.streams.factories import metrics
from tests.unit.streams.galleries_factories import MODEL, fact, record, tombstone, unit

pytestmark = [pytest.mark.kafka]


@pytest.fixture
async def config(tmp_path: Path) -> AsyncIterator[Settings]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        kafka_bootstrap=os.environ.get("FACESTREAM_KAFKA_BOOTSTRAP", "127.0.0.1:19092"),
        topic_prefix=f"testbulk{uuid.uuid4().hex[:6]}",
        index_dir=tmp_path,
        model_pack=MODEL.pack,
        index_backend="faiss-flat",
    )
    specs = [s for s in topic_specs(settings) if s.name == settings.topics.embeddings]
    await ensure_topics(settings, specs)
    yield settings
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([s.name for s in specs])
    finally:
        await admin.close()


@pytest.fixture(params=["in process", "reader processes"])
def readers(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "reader processes":
        monkeypatch.setattr(bulk_readers, "PARALLEL_FROM", 0)  # readers for this small log too
    return str(request.param)


async def _write(config: Settings) -> dict[str, np.ndarray]:
    """Write the log; the default gallery's faces it leaves, with their vectors."""
    rng = np.random.default_rng(3)
    bad = unit(rng)
    bad[0] = np.nan
    defaults = {f"d{i}": unit(rng) for i in range(300)}
    records = [
        *(record(i, fact(face, f"p{i % 7}", vector)) for i, (face, vector) in enumerate(defaults.items())),
        *(record(i, fact(f"b{i}", f"p{i % 7}", unit(rng), gallery="branch-b")) for i in range(120)),
        tombstone(0, "d5"),
        tombstone(0, "b7"),
        record(0, fact("poison", "p", bad)),
        record(0, fact("d9", "moved", moved := unit(rng))),
    ]
    producer = AIOKafkaProducer(bootstrap_servers=config.kafka_bootstrap)
    await producer.start()
    try:
        for r in records:
            await producer.send(config.topics.embeddings, r.value, key=r.key, headers=r.headers)
        await producer.flush()
    finally:
        await producer.stop()
    del defaults["d5"]
    return defaults | {"d9": moved}


async def test_replay_of_one_gallery_keeps_its_records_only(config: Settings, readers: str) -> None:
    await _write(config)
    default = await build_from_log(config, MODEL, backend="faiss-flat")
    branch = await build_from_log(config, MODEL, backend="faiss-ivfpq", gallery="branch-b")
    assert len(default.index) == 299 and "d5" not in default.index and "b1" not in default.index
    assert default.index.person_of("d9") == "moved"  # type: ignore[attr-defined]
    assert len(branch.index) == 119 and "b7" not in branch.index and "d1" not in branch.index
    assert branch.index.backend == "faiss-ivfpq"
    assert default.records == branch.records == 424 and default.skipped == 1
    assert sum(default.offsets.values()) == 424


async def test_a_replica_restores_every_gallery_from_the_log_in_bulk(config: Settings, readers: str) -> None:
    await _write(config)
    state = ReplicaState()
    follower = LogFollower(config, metrics(), MODEL, state)
    state.hold("default", follower.default_index())
    state.hold("branch-b", follower.default_index())  # as the catalog would have it
    ends = cut_ends(config, config.topics.embeddings, list(range(config.topic_partitions)))
    await follower.read_in_bulk(dict.fromkeys(ends, 0), ends)
    assert state.sizes() == {"branch-b": 119, "default": 299}
    assert state.applied == ends and "b7" not in state.galleries["branch-b"].index
    assert set(state.gallery_of.values()) == {"branch-b"} and len(state.gallery_of) == 119


async def test_readers_fold_clean_chunks_and_hand_over_the_others_raw(config: Settings) -> None:
    written = await _write(config)
    ends = cut_ends(config, config.topics.embeddings, list(range(config.topic_partitions)))
    wanted = {"default": (MODEL.id, MODEL.dim)}
    starts = dict.fromkeys(ends, 0)
    parts = ParallelCut(config, config.topics.embeddings, starts, ends, wanted, readers=2, chunk=20)
    folded: dict[str, np.ndarray] = {}
    raw = reached = 0
    try:
        while (part := parts.next()) is not None:
            reached += part.records
            if part.raw is not None:  # the poison record's chunk and branch-b's records
                raw += len(part.raw)
                continue
            assert part.folded is not None
            for upserts in part.folded.batch.upserts.values():
                folded.update(zip(upserts.faces, upserts.vectors.copy(), strict=True))
    finally:
        parts.close()
    assert reached == 424 and raw > 0 and folded  # each kind of part came
    assert all(np.array_equal(v, written[face]) for face, v in folded.items())  # out of the slots


async def test_a_reader_killed_midway_fails_the_read_instead_of_hanging(config: Settings) -> None:
    await _write(config)
    ends = cut_ends(config, config.topics.embeddings, list(range(config.topic_partitions)))
    wanted = {"default": (MODEL.id, MODEL.dim)}
    # Chunks of one record: each reader fills its slots and waits for them, its log unread.
    parts = ParallelCut(
        config, config.topics.embeddings, dict.fromkeys(ends, 0), ends, wanted, readers=1, chunk=1
    )
    try:
        assert parts.next() is not None
        (reader,) = parts._processes
        reader.kill()
        reader.join(timeout=10)
        assert reader.exitcode is not None  # the fault is set up: the reader is gone
        with pytest.raises(RuntimeError, match="ended without finishing"):
            while parts.next() is not None:
                pass
    finally:
        parts.close()


_HOLDER = """
import sys, time
from core.settings import Settings
from streams.bulk_log import cut_ends
from streams.bulk_readers import ParallelCut
if __name__ == "__main__":
    settings = Settings(_env_file=None, kafka_bootstrap=sys.argv[1], topic_prefix=sys.argv[2])
    topic = settings.topics.embeddings
    ends = cut_ends(settings, topic, [0, 1, 2])
    parts = ParallelCut(settings, topic, dict.fromkeys(ends, 0), ends, {}, readers=3, chunk=1)
    print(*(p.pid for p in parts._processes), flush=True)
    parts.next()
    time.sleep(120)
"""


async def test_readers_of_a_process_killed_midway_exit_with_it(config: Settings, tmp_path: Path) -> None:
    await _write(config)
    script = tmp_path / "holder.py"
    script.write_text(_HOLDER)
    left = await asyncio.to_thread(_kill_the_holder, config, script)
    assert left == []


def _kill_the_holder(config: Settings, script: Path) -> list[int]:
    """Start a process reading the log with three readers, kill -9 it: its readers still alive."""
    holder = subprocess.Popen(
        [sys.executable, str(script), config.kafka_bootstrap, config.topic_prefix],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONPATH": str(Path(__file__).parents[3])},
    )
    try:
        assert holder.stdout is not None
        readers = [int(pid) for pid in holder.stdout.readline().split()]
        assert len(readers) == 3 and all(_alive(pid) for pid in readers)  # the fault is set up
        holder.kill()
        holder.wait(timeout=10)
        deadline = time.monotonic() + 15
        while any(_alive(pid) for pid in readers) and time.monotonic() < deadline:
            time.sleep(0.2)
        return [pid for pid in readers if _alive(pid)]
    finally:
        holder.kill()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
