"""The cost of many small galleries: identify search latency at the replica with one gallery of
N faces beside 100 galleries of N/100 faces (the same total), in one run.

Single-query searches back to back through ``ReplicaState.search`` (the lock a query takes and
the thread hop included, as the replica's query path runs them), faiss-flat, synthetic unit
vectors; the many-galleries case spreads its queries over every gallery. p50/p95 of each and
the ratio many/one. Then 64 concurrent queries, spread over the galleries, answered as the
query server does (one batch per gallery named) against one batch of 64 in the one gallery.

    .venv/bin/python -m bench.galleries --faces 100000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any

import numpy as np

from index import registry
from streams.replica_state import GalleryIndex, ReplicaState

DIM = 512
MODEL = "bench/synthetic@1"


def _vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    vectors = rng.standard_normal((n, DIM), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def build(faces: int, galleries: int, seed: int = 0) -> ReplicaState:
    rng = np.random.default_rng(seed)
    per = faces // galleries
    held: dict[str, GalleryIndex] = {}
    for g in range(galleries):
        index = registry.create("faiss-flat", dim=DIM, model_id=MODEL)
        ids = [f"g{g}-f{i}" for i in range(per)]
        index.add(ids, [f"p{i // 4}" for i in range(per)], _vectors(rng, per))  # person ids overlap
        held["default" if galleries == 1 else f"gallery-{g:03d}"] = GalleryIndex(index)
    return ReplicaState(galleries=held)


async def latencies(state: ReplicaState, queries: np.ndarray, rounds: int) -> list[float]:
    names = sorted(state.galleries)
    times = []
    for i in range(rounds):
        query = queries[i % len(queries)][None, :]
        started = time.perf_counter()
        await state.search(query, 10, names[i % len(names)])
        times.append(time.perf_counter() - started)
    return times


async def batch_latencies(state: ReplicaState, queries: np.ndarray, size: int, rounds: int) -> list[float]:
    """``size`` concurrent queries as the query server answers them: one search per gallery
    named (all in one gallery: one search of ``size`` rows)."""
    names = sorted(state.galleries)
    times = []
    for i in range(rounds):
        rows = [(i * size + j) % len(queries) for j in range(size)]
        by_gallery: dict[str, list[int]] = {}
        for j, row in enumerate(rows):
            by_gallery.setdefault(names[(i * size + j) % len(names)], []).append(row)
        started = time.perf_counter()
        for gallery, picked in by_gallery.items():
            await state.search(queries[picked], 10, gallery)
        times.append(time.perf_counter() - started)
    return times


def _summary(times: list[float]) -> dict[str, float]:
    return {
        "n": len(times),
        "p50_ms": round(1000 * float(np.percentile(times, 50)), 3),
        "p95_ms": round(1000 * float(np.percentile(times, 95)), 3),
    }


async def run(faces: int, many: int, rounds: int) -> dict[str, Any]:
    queries = _vectors(np.random.default_rng(99), 256)
    report: dict[str, Any] = {"faces": faces, "cpus": os.cpu_count(), "loadavg_start": os.getloadavg()}
    one, spread = build(faces, 1), build(faces, many, seed=1)
    await latencies(one, queries, 50)  # warm up both
    await latencies(spread, queries, 50)
    # Interleaved rounds, so that a change in the machine's load falls on both alike.
    single: list[float] = []
    several: list[float] = []
    for _ in range(4):
        single += await latencies(one, queries, rounds // 4)
        several += await latencies(spread, queries, rounds // 4)
    report[f"one_gallery_of_{faces}"] = _summary(single)
    report[f"{many}_galleries_of_{faces // many}"] = _summary(several)
    report["ratio_many_vs_one"] = {
        "p50": round(float(np.percentile(several, 50) / np.percentile(single, 50)), 3),
        "p95": round(float(np.percentile(several, 95) / np.percentile(single, 95)), 3),
    }
    batch_one = await batch_latencies(one, queries, 64, rounds // 20)
    batch_many = await batch_latencies(spread, queries, 64, rounds // 20)
    report["batch_of_64_queries"] = {
        "one_gallery": _summary(batch_one),
        f"{many}_galleries": _summary(batch_many),
        "ratio_p50": round(float(np.percentile(batch_many, 50) / np.percentile(batch_one, 50)), 3),
    }
    report["loadavg_end"] = os.getloadavg()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--faces", type=int, default=100_000)
    parser.add_argument("--galleries", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.faces, args.galleries, args.rounds)), indent=2))


if __name__ == "__main__":
    main()
