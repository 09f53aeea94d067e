"""Index benchmark: every backend beside a plain numpy brute-force baseline, in one run.

On synthetic clustered 512-d galleries (identities with noisy samples, genuine cosine ~0.68;
queries are new samples of enrolled people) it measures per backend and gallery size:
  * add rate (faces/s, training included), memory per face (``stats().memory_bytes``);
  * single-query latency p50/p95 and batched throughput (queries/s, batches of ``--batch``);
  * recall@1 against exact search; snapshot save and load (``write_snapshot`` /
    ``read_snapshot``: fsync and sha256 included);
and each as a ratio to numpy doing the same (``G @ q``, ``np.save``/``np.load``). JSON out.

Because the machine is shared, ``faiss-flat`` is also timed *interleaved* with numpy (query by
query and batch by batch, rotating which goes first): ``flat_vs_numpy`` in each size's entry
is that head-to-head (target: every ratio <= 1 for times, >= 1 for throughput), ``ratio`` for
``index.search`` whole (validation, ids, ``Hit`` objects) and ``ratio_scan`` for its scan alone
(what the numpy line computes). Each index is settled before its searches are timed
(``settle_s``: ``faiss-flat``'s rows moved into huge pages, as a replica's snapshot thread
does in the background), as numpy's own array is in huge pages from the start. The BLAS
libraries loaded and the kernels they run are reported (``threadpoolctl``); on hosts that set
``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE``, unset both for that one command to see numpy's own
kernel.

    .venv/bin/python -m bench.index                       # 10k and 100k
    .venv/bin/python -m bench.index --sizes 10000 --backends faiss-flat qdrant milvus
    .venv/bin/python -m bench.index --include-1m          # adds 1M, flat + IVF-PQ only

The embedded stores (qdrant, milvus) run only up to ``--embedded-max`` faces (their local
modes are development stores), HNSW and ScaNN up to ``--graph-max``. The rebuild rate from
the Kafka log is measured by ``bench/replay.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from index import create, names, read_snapshot, write_snapshot
from index.labelled import LabelledIndex

DIM = 512
MODEL = "bench/synthetic@1"
TOPIC = "bench.embeddings.v1"
ALL_BACKENDS = ["faiss-flat", "faiss-ivfpq", "faiss-hnsw", "scann", "qdrant", "milvus"]
MILLION_BACKENDS = {"faiss-flat", "faiss-ivfpq"}
EMBEDDED = {"qdrant", "milvus"}
GRAPH = {"faiss-hnsw", "scann"}


def gallery(
    n: int, queries: int, seed: int = 7, per: int = 5, noise: float = 0.03
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    persons = max(1, n // per)
    centres = rng.standard_normal((persons, DIM), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    rows = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):  # in chunks: 1M x 512 floats is 2 GiB already
        who = np.arange(start, min(n, start + 100_000)) // per
        part = centres[who] + rng.standard_normal((len(who), DIM), dtype=np.float32) * noise
        rows[start : start + len(who)] = part / np.linalg.norm(part, axis=1, keepdims=True)
    probes = centres[rng.choice(persons, queries, replace=False)]
    probes = probes + rng.standard_normal(probes.shape, dtype=np.float32) * noise
    return rows, probes / np.linalg.norm(probes, axis=1, keepdims=True)


def latencies(search: Any, queries: np.ndarray, single: int, batch: int) -> dict[str, float]:
    times = []
    for row in queries[:single]:
        start = time.perf_counter()
        search(row[None, :])
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    for first in range(0, len(queries), batch):
        search(queries[first : first + batch])
    elapsed = time.perf_counter() - start
    return {
        "p50_ms": 1000 * float(np.percentile(times, 50)),
        "p95_ms": 1000 * float(np.percentile(times, 95)),
        "batched_qps": len(queries) / elapsed,
    }


def numpy_search(store: np.ndarray, k: int = 10) -> Any:
    def search(q: np.ndarray) -> np.ndarray:
        sims = q @ store.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if sims.shape[1] > k else np.argsort(-sims, axis=1)
        return np.take_along_axis(top, np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1), axis=1)

    return search


def head_to_head(
    vectors: np.ndarray, queries: np.ndarray, args: argparse.Namespace, backend: str = "faiss-flat"
) -> dict[str, Any]:
    """``backend`` and numpy timed alternately on the same queries: single and batched."""
    index = create(backend, dim=DIM, model_id=MODEL)
    faces = [f"f{i}" for i in range(len(vectors))]
    for first in range(0, len(vectors), 100_000):
        end = first + 100_000
        index.add(faces[first:end], faces[first:end], vectors[first:end])
    settle_s = _settled(index)
    # The backend whole (validation, normalisation, ids and Hit objects, as callers see it) and
    # its scan alone (unit rows in, labels out: the part numpy's line does).
    scan = index._search_vectors  # type: ignore[attr-defined]
    contenders = {
        "numpy": numpy_search(vectors),
        backend: lambda q: index.search(q, 10),
        f"{backend}.scan": lambda q: scan(q, 10),
    }
    single: dict[str, list[float]] = {name: [] for name in contenders}
    batched: dict[str, float] = dict.fromkeys(contenders, 0.0)
    names_in_turn = list(contenders)
    for turn, row in enumerate(queries[: args.single]):
        order = names_in_turn[turn % 3 :] + names_in_turn[: turn % 3]  # each goes first in turn
        for name in order:
            start = time.perf_counter()
            contenders[name](row[None, :])
            single[name].append(time.perf_counter() - start)
    for turn, first in enumerate(range(0, len(queries), args.batch)):
        order = names_in_turn[turn % 3 :] + names_in_turn[: turn % 3]
        for name in order:
            start = time.perf_counter()
            contenders[name](queries[first : first + args.batch])
            batched[name] += time.perf_counter() - start
    result: dict[str, Any] = {
        name: {
            "single_p50_ms": 1000 * float(np.percentile(single[name], 50)),
            "single_p95_ms": 1000 * float(np.percentile(single[name], 95)),
            "batched_qps": len(queries) / batched[name],
        }
        for name in contenders
    }
    keys = ("single_p50_ms", "single_p95_ms", "batched_qps")
    result["settle_s"] = settle_s
    result["ratio"] = {key: result[backend][key] / result["numpy"][key] for key in keys}
    result["ratio_scan"] = {key: result[f"{backend}.scan"][key] / result["numpy"][key] for key in keys}
    return result


def _settled(index: Any) -> float:
    """Seconds to settle the index as a replica's snapshot thread does in the background
    (``faiss-flat``: rows into huge pages, like numpy's own array); searches are timed after."""
    start = time.perf_counter()
    if isinstance(index, LabelledIndex):
        index.settle()
    return time.perf_counter() - start


def blas_libraries() -> list[dict[str, Any]]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [
        {k: info.get(k) for k in ("internal_api", "prefix", "version", "architecture", "num_threads")}
        for info in threadpool_info()
    ]


def numpy_baseline(vectors: np.ndarray, queries: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    start = time.perf_counter()
    store = np.empty_like(vectors)
    for first in range(0, len(vectors), 10_000):  # appended in the batches an index gets
        store[first : first + 10_000] = vectors[first : first + 10_000]
    add_s = time.perf_counter() - start

    search = numpy_search(store)
    truth = np.concatenate([search(queries[i : i + 100])[:, 0] for i in range(0, len(queries), 100)])
    scratch = Path(tempfile.mkdtemp(prefix="bench-numpy-"))
    try:
        start = time.perf_counter()
        np.save(scratch / "g.npy", store)
        save_s = time.perf_counter() - start
        start = time.perf_counter()
        np.load(scratch / "g.npy")
        load_s = time.perf_counter() - start
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "add_per_s": len(vectors) / add_s,
        **latencies(search, queries, args.single, args.batch),
        "memory_bytes_per_face": store.nbytes / len(store),
        "recall_at_1": 1.0,
        "save_s": save_s,
        "load_s": load_s,
        "_truth": truth,
    }


def measure(
    name: str, vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray, args: argparse.Namespace
) -> dict:
    index = create(name, dim=DIM, model_id=MODEL)
    faces = [f"f{i}" for i in range(len(vectors))]
    persons = [f"p{i // 5}" for i in range(len(vectors))]
    start = time.perf_counter()
    for first in range(0, len(vectors), 10_000):
        end = first + 10_000
        index.add(faces[first:end], persons[first:end], vectors[first:end])
    add_s = time.perf_counter() - start
    settle_s = _settled(index)
    index.search(queries[:1], 10)  # lazy builds (ScaNN) are not search latency
    result: dict[str, Any] = {"add_per_s": len(vectors) / add_s, "add_s": add_s, "settle_s": settle_s}
    result.update(latencies(lambda q: index.search(q, 10), queries, args.single, args.batch))
    top = [int(hits[0].face_id[1:]) for hits in index.search(queries, 1)]
    result["recall_at_1"] = float(np.mean(np.asarray(top) == truth))
    result["memory_bytes_per_face"] = index.stats().memory_bytes / len(index)
    scratch = Path(tempfile.mkdtemp(prefix="bench-snapshot-"))
    try:
        start = time.perf_counter()
        write_snapshot(index, scratch, offsets={0: len(vectors)}, topic=TOPIC)
        result["save_s"] = time.perf_counter() - start
        start = time.perf_counter()
        read_snapshot(scratch, expected_model_id=MODEL, expected_topic=TOPIC)
        result["load_s"] = time.perf_counter() - start
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return result


def ratios(result: dict[str, Any], base: dict[str, Any]) -> dict[str, float]:
    """backend / numpy; above 1 is better for rates, below 1 is better for times and memory."""
    keys = ["add_per_s", "p50_ms", "p95_ms", "batched_qps", "memory_bytes_per_face", "save_s", "load_s"]
    return {key: result[key] / base[key] for key in keys if base.get(key)}


def wanted(name: str, size: int, args: argparse.Namespace) -> bool:
    if size >= 1_000_000 and name not in MILLION_BACKENDS:
        return False
    if name in EMBEDDED and size > args.embedded_max:
        return False
    return not (name in GRAPH and size > args.graph_max)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--include-1m", action="store_true", help="add a 1M gallery (flat and IVF-PQ)")
    parser.add_argument("--backends", nargs="+", default=[b for b in ALL_BACKENDS if b in names()])
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--single", type=int, default=200, help="queries timed one by one")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--embedded-max", type=int, default=10_000)
    parser.add_argument("--graph-max", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=0, help="FAISS OpenMP threads (0: its default)")
    parser.add_argument(
        "--flat-only", action="store_true", help="only the interleaved faiss-flat vs numpy comparison"
    )
    args = parser.parse_args()
    if args.threads:
        import faiss

        faiss.omp_set_num_threads(args.threads)
    sizes = sorted(set(args.sizes) | ({1_000_000} if args.include_1m else set()))
    report: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_start": os.getloadavg(),
            "openblas_env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")},
            "blas": blas_libraries(),
        },
        "dim": DIM,
        "queries": args.queries,
        "k": 10,
        "sizes": {},
    }
    for size in sizes:
        vectors, queries = gallery(size, args.queries)
        flat = head_to_head(vectors, queries, args) if "faiss-flat" in names() else {}
        ratios_now = {"whole": flat.get("ratio"), "scan": flat.get("ratio_scan")}
        print(json.dumps({"size": size, "flat_vs_numpy": ratios_now}), flush=True, file=sys.stderr)
        if args.flat_only:
            report["sizes"][str(size)] = {"flat_vs_numpy": flat}
            continue
        base = numpy_baseline(vectors, queries, args)
        truth = base.pop("_truth")
        entry: dict[str, Any] = {"flat_vs_numpy": flat, "numpy": base, "backends": {}}
        for name in args.backends:
            if not wanted(name, size, args):
                continue
            result = measure(name, vectors, queries, truth, args)
            result["vs_numpy"] = ratios(result, base)
            entry["backends"][name] = result
            print(json.dumps({"size": size, "backend": name, **result}), flush=True, file=sys.stderr)
        report["sizes"][str(size)] = entry
    report["machine"]["loadavg_end"] = os.getloadavg()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
