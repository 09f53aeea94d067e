"""Replica benchmark: search latency while a snapshot is written, and time to ready from one.

Uses the replica's own pieces (``ReplicaState``, ``Snapshotter``, ``LogFollower``) on a
synthetic gallery, in one run:
  * ``search_during_snapshot``: single-query searches back to back through
    ``ReplicaState.search`` (the lock a query takes included), in rounds that alternate an idle
    phase with a phase in which a snapshot is written (while small batches of new faces are
    applied); p50/p99 of each and the ratio snapshot/idle (target: p99 ratio <= 2). With
    ``--locked-baseline`` one more round saves the snapshot the old way, under the lock
    searches take, for comparison.
  * ``ready_from_snapshot``: a fresh ``IndexReplica`` restoring from that snapshot against the
    real broker (an empty log tail), from start to ready; and the snapshot load alone
    (``read_snapshot``: every byte checked against the manifest, vectors memory-mapped).

    .venv/bin/python -m bench.replica --faces 1000000
    .venv/bin/python -m bench.replica --faces 100000 --no-kafka
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from bench.index import DIM, gallery
from index import read_snapshot, write_snapshot
from index.faiss_flat import FaissFlatIndex
from schemas.events import ModelInfo
from streams.log_fold import PendingChanges
from streams.replica_snapshot import Snapshotter
from streams.replica_state import ReplicaState

MODEL = ModelInfo(pack="bench", recognizer="synthetic", version="1", dim=DIM)


def _percentiles(samples: list[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "p50_ms": 1000 * float(np.percentile(samples, 50)),
        "p99_ms": 1000 * float(np.percentile(samples, 99)),
        "max_ms": 1000 * float(max(samples)),
    }


async def _search_until(state: ReplicaState, queries: np.ndarray, done: asyncio.Future[Any]) -> list[float]:
    times: list[float] = []
    i = 0
    while not done.done():
        start = time.perf_counter()
        await state.search(queries[i % len(queries)][None, :], 10)
        times.append(time.perf_counter() - start)
        i += 1
    return times


async def _apply_trickle(state: ReplicaState, done: asyncio.Future[Any], round_no: int) -> int:
    """New faces every 100 ms, as enrollments would bring them, while the phase lasts."""
    rng = np.random.default_rng(round_no)
    applied = 0
    while not done.done():
        pending = PendingChanges()
        for vector in rng.standard_normal((20, DIM), dtype=np.float32):
            pending.upsert(f"new-{round_no}-{applied}", f"new-person-{round_no}", vector)
            applied += 1
        await state.apply(pending, {0: state.applied[0] + 20})
        await asyncio.sleep(0.1)
    return applied


async def _phase(state: ReplicaState, queries: np.ndarray, work: Any, round_no: int) -> list[float]:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()
    searching = asyncio.create_task(_search_until(state, queries, done))
    trickle = asyncio.create_task(_apply_trickle(state, done, round_no))
    try:
        done.set_result(await work())
    finally:
        if not done.done():
            done.set_result(None)
    await trickle
    return await searching


async def search_during_snapshot(
    state: ReplicaState, queries: np.ndarray, directory: Path, topic: str, rounds: int, locked_baseline: bool
) -> dict[str, Any]:
    snapshots = Snapshotter(state, directory, topic)
    idle: list[float] = []
    during: list[float] = []
    writes: list[float] = []
    try:
        for round_no in range(rounds):
            started = time.perf_counter()
            assert await snapshots_once(snapshots, during, state, queries, round_no)
            writes.append(time.perf_counter() - started)
            # An idle phase as long as the snapshot took, searches and trickle alike.
            idle += await _phase(state, queries, lambda d=writes[-1]: asyncio.sleep(d), 100 + round_no)
        result: dict[str, Any] = {
            "rounds": rounds,
            "snapshot_write_s": writes,
            "idle": _percentiles(idle),
            "during_snapshot": _percentiles(during),
        }
        result["p99_ratio"] = result["during_snapshot"]["p99_ms"] / result["idle"]["p99_ms"]
        result["p50_ratio"] = result["during_snapshot"]["p50_ms"] / result["idle"]["p50_ms"]
        if locked_baseline:
            result["locked_baseline"] = await _locked_round(
                state, queries, directory.parent / "locked", topic
            )
            result["locked_baseline"]["p99_ratio"] = (
                result["locked_baseline"]["p99_ms"] / result["idle"]["p99_ms"]
            )
    finally:
        snapshots.close()
    return result


async def snapshots_once(
    snapshots: Snapshotter, samples: list[float], state: ReplicaState, queries: np.ndarray, round_no: int
) -> bool:
    written: list[bool] = []

    async def work() -> None:
        written.append(await snapshots.snapshot())

    samples += await _phase(state, queries, work, round_no)
    return written[0]


async def _locked_round(
    state: ReplicaState, queries: np.ndarray, directory: Path, topic: str
) -> dict[str, float]:
    """The old way: the snapshot saved under the lock that searches take."""

    async def work() -> None:
        async with state.index_lock:
            await asyncio.to_thread(
                write_snapshot, state.index, directory, offsets=dict(state.applied), topic=topic
            )

    return _percentiles(await _phase(state, queries, work, 999))


def _settings(scratch: Path) -> Any:
    from core.settings import Settings

    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        topic_prefix=f"benchreplica{uuid.uuid4().hex[:6]}",
        index_dir=scratch,
        replica_id="replica-bench",
        index_backend="faiss-flat",
        snapshot_interval_s=3600,
    )


async def ready_from_snapshot(settings: Any, model: ModelInfo) -> dict[str, Any]:
    """A fresh replica against the real broker, its snapshot covering the whole (empty) log."""
    from aiokafka.admin import AIOKafkaAdminClient

    from core.metrics import Metrics
    from core.topics import ensure_topics, topic_specs
    from streams.replica import IndexReplica

    specs = topic_specs(settings)
    await ensure_topics(settings, specs)
    try:
        started = time.perf_counter()
        replica = IndexReplica(settings, Metrics.create(), model)
        running = asyncio.create_task(replica.run())
        await asyncio.wait_for(replica.state.ready.wait(), 120)
        ready_s = time.perf_counter() - started
        first = time.perf_counter()
        await replica.state.search(np.ones((1, DIM), dtype=np.float32), 10)
        first_search_s = time.perf_counter() - first
        size = len(replica.state.index)
        restored_from = replica.state.restored_from
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    finally:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        await admin.start()
        await admin.delete_topics([s.name for s in specs])
        await admin.close()
    return {
        "faces": size,
        "restored_from": restored_from,
        "ready_s": ready_s,
        "first_search_s": first_search_s,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    scratch = Path(tempfile.mkdtemp(prefix="bench-replica-", dir=args.scratch))
    settings = _settings(scratch)
    topic = settings.topics.embeddings
    vectors, queries = gallery(args.faces, 200)
    index = FaissFlatIndex(dim=DIM, model_id=MODEL.id)
    faces = [f"f{i}" for i in range(args.faces)]
    persons = [f"p{i // 5}" for i in range(args.faces)]
    for first in range(0, args.faces, 100_000):
        end = first + 100_000
        index.add(faces[first:end], persons[first:end], vectors[first:end])
    del vectors, faces, persons
    state = ReplicaState(index=index, applied={0: args.faces}, target={0: args.faces})
    report: dict[str, Any] = {"faces": args.faces, "cpus": os.cpu_count(), "loadavg_start": os.getloadavg()}
    try:
        report["search_during_snapshot"] = await search_during_snapshot(
            state, queries, scratch / "rounds", topic, args.rounds, args.locked_baseline
        )
        started = time.perf_counter()
        loaded = read_snapshot(scratch / "rounds", expected_model_id=MODEL.id, expected_topic=topic)
        report["snapshot_load_s"] = time.perf_counter() - started
        del loaded
        if not args.no_kafka:
            # The gallery as the replica would have snapshotted it, at offset 0 of an empty log.
            view = index.frozen()
            assert view is not None
            write_snapshot(view, scratch / settings.replica_id, offsets={0: 0}, topic=topic)
            del state, index, view
            report["ready_from_snapshot"] = await ready_from_snapshot(settings, MODEL)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report["loadavg_end"] = os.getloadavg()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--faces", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--locked-baseline", action="store_true")
    parser.add_argument("--no-kafka", action="store_true", help="skip the replica start against the broker")
    parser.add_argument("--scratch", default=None, help="where snapshots are written (default: $TMPDIR)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
