"""Pipeline benchmark: identify latency through Kafka vs the same work in one process.

Needs a running stack (`make up`). In one run it measures:
  * enroll throughput (images/s) through POST /enroll, sequential and with concurrent clients;
  * identify latency p50/p95 through POST /identify (facade -> Kafka -> faust worker ->
    Kafka -> index replica -> Kafka -> facade);
  * the baseline: decode + detect + align + embed + FAISS search in this process, no Kafka,
    on the same probes and an index of the same enrolled photos (padded with random faces to
    the stack's gallery size, so that both search as many faces), timed probe by probe in turn
    with the pipeline's identify (which goes first alternates), so that the host's speed
    drifting during the run moves both alike;
  * the in-process enroll rate (decode + detect + align + embed per image, one process);
  * where one identify's time goes, hop by hop (bench/hops.py: the Kafka records' CreateTime,
    the stack's log and the answer's stage timings), over the sequential identify requests;
  * saturation: `--saturation-clients` concurrent clients identifying for a while, beside the
    in-process rate (1000 / mean in-process latency);
and prints the ratios pipeline / baseline (also paired: the median, request by request, of the
pipeline's latency over the in-process latency of the same probe in the same turn). With
`--profile`, py-spy samples the facade, the identify worker and the replica while the identify
latencies are measured, and the report says where their time outside the model goes
(bench/stack_profile.py).

    .venv/bin/python -m bench.pipeline --rounds 5 --clients 4 --profile 20 --stack-log var/log/stack.log
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from bench import hops, stack_profile
from core.settings import Settings
from engine.factory import build_engine
from index import registry
from index.base import search_persons

REPO = Path(__file__).resolve().parents[1]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def load_people(root: Path) -> dict[str, list[Path]]:
    people: dict[str, list[Path]] = defaultdict(list)
    with (root / "manifest.csv").open() as fh:
        for row in csv.DictReader(fh):
            people[row["identity"]].append(root / row["path"])
    return {p: sorted(v) for p, v in sorted(people.items())}


def enroll_all(client: httpx.Client, people: dict[str, list[Path]], tag: str, clients: int) -> dict:
    jobs = [(f"{tag}-{person}", paths[1:]) for person, paths in people.items()]
    images = sum(len(paths) for _, paths in jobs)

    def one(job: tuple[str, list[Path]]) -> int:
        person, paths = job
        files = [("images", (p.name, p.read_bytes())) for p in paths]
        response = client.post(f"/enroll/{person}", files=files)
        response.raise_for_status()
        return len(response.json()["accepted"])

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        accepted = sum(pool.map(one, jobs))
    elapsed = time.perf_counter() - started
    return {"images": images, "accepted": accepted, "seconds": elapsed, "images_per_s": images / elapsed}


Answer = tuple[str, float, float, dict[str, float]]  # request id, sent, answered (wall s), timings


def identify_once(client: httpx.Client, data: bytes) -> tuple[float, Answer]:
    """The latency (ms) of one identify, and what bench.hops needs of it."""
    sent_at = time.time()
    started = time.perf_counter()
    response = client.post("/identify", files={"image": ("probe.jpg", data)})
    latency = (time.perf_counter() - started) * 1000
    answered_at = time.time()
    response.raise_for_status()
    body = response.json()
    return latency, (body["request_id"], sent_at, answered_at, body.get("timings_ms", {}))


def pipeline_latencies(client: httpx.Client, probes: list[bytes], rounds: int) -> list[float]:
    return [identify_once(client, data)[0] for _ in range(rounds) for data in probes]


class InProcess:
    """The baseline: the same work in this process (decode, detect, align, embed, search), on an
    index of the same enrolled photos."""

    def __init__(self, settings: Settings, people: dict[str, list[Path]]) -> None:
        self.engine = build_engine(settings)
        self.top_k = settings.top_k
        self.index = registry.create("faiss-flat", dim=self.engine.model.dim, model_id=self.engine.model.id)
        face_ids, persons, vectors = [], [], []
        started = time.perf_counter()
        for person, paths in people.items():
            for path in paths[1:]:
                prepared = self.engine.prepare(path.read_bytes())
                face_ids.append(uuid.uuid4().hex)
                persons.append(person)
                vectors.append(self.engine.embed([prepared.faces[0].crop])[0])
        self.enroll_rate = len(vectors) / (time.perf_counter() - started)
        self.index.add(face_ids, persons, np.stack(vectors))

    def pad_to(self, size: int, seed: int = 0) -> None:
        """Random unit vectors up to `size` faces: the stack's replica searches its whole gallery
        (earlier runs' faces too), and the same search is part of the same work."""
        missing = size - len(self.index)
        if missing <= 0:
            return
        vectors = np.random.default_rng(seed).standard_normal((missing, self.engine.model.dim))
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        ids = [f"filler-{n}" for n in range(missing)]
        self.index.add(ids, ids, vectors.astype(np.float32))

    def identify(self, data: bytes) -> float:
        """One identify's latency (ms)."""
        started = time.perf_counter()
        prepared = self.engine.prepare(data)
        vector = self.engine.embed([prepared.faces[0].crop])
        search_persons(self.index, vector, self.top_k)
        return (time.perf_counter() - started) * 1000


def interleaved_latencies(
    client: httpx.Client, baseline: InProcess, probes: list[bytes], rounds: int, answers: list[Answer]
) -> tuple[list[float], list[float]]:
    """Pipeline and in-process latencies, probe by probe in turn (which goes first alternates), so
    that the host's speed drifting during the run moves both alike."""
    pipeline, in_process = [], []
    for turn, data in enumerate(probe for _ in range(rounds) for probe in probes):
        if turn % 2:
            in_process.append(baseline.identify(data))
        latency, answer = identify_once(client, data)
        pipeline.append(latency)
        answers.append(answer)
        if not turn % 2:
            in_process.append(baseline.identify(data))
    return pipeline, in_process


def traced_latencies(
    client: httpx.Client,
    settings: Settings,
    baseline: InProcess,
    probes: list[bytes],
    rounds: int,
    stack_log: Path | None,
) -> tuple[list[float], list[float], dict]:
    """The pipeline's and the baseline's latencies, and where the pipeline's time went hop by hop
    (bench/hops.py)."""
    topics = settings.topics
    records = hops.RecordTimes(
        settings,
        {
            "request": topics.identify_requests,
            "query": topics.identify_queries,
            "reply": topics.replies(settings.instance_id),
            "audit": topics.audit,
        },
    )
    records.mark()
    log_start = stack_log.stat().st_size if stack_log and stack_log.exists() else 0
    answers: list[Answer] = []
    pipeline, in_process = interleaved_latencies(client, baseline, probes, rounds, answers)
    time.sleep(1.0)  # the log lines of the last request reach the file
    lines = hops.read_log_since(stack_log, log_start) if stack_log and stack_log.exists() else []
    return pipeline, in_process, hops.breakdown(hops.assemble(answers, records.read(), lines))


def saturation(client: httpx.Client, probes: list[bytes], clients: int, seconds: float) -> dict:
    """Answers per second with `clients` identifying back to back (past the stack's capacity)."""
    deadline = time.monotonic() + seconds
    latencies: list[float] = []

    def loop(n: int) -> None:
        i = n
        while time.monotonic() < deadline:
            latencies.append(identify_once(client, probes[i % len(probes)])[0])
            i += clients

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(loop, range(clients)))
    elapsed = time.perf_counter() - started
    return {"clients": clients, "answers_per_s": round(len(latencies) / elapsed, 2), **summary(latencies)}


# pgrep patterns: `python -m cli.main ...` (and `core.cli`, where the CLI lived before).
PROFILED = {
    "api": r"cli(\.main)? api",
    "identify-worker": r"cli(\.main)? worker identify",
    "replica": r"cli(\.main)? replica",
}


def profiled(
    client: httpx.Client, probes: list[bytes], rounds: int, seconds: float
) -> tuple[list[float], dict]:
    """The latencies, measured while py-spy samples the stack's processes."""
    out = Path(tempfile.mkdtemp(prefix="fs-profile-"))
    recorders = {}
    for name, pattern in PROFILED.items():
        pids = stack_profile.pids_of(pattern)
        if pids:
            recorders[name] = (
                stack_profile.start(pids[0], seconds, out / f"{name}.txt"),
                out / f"{name}.txt",
            )
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        latencies += pipeline_latencies(client, probes, 1)
    report = {}
    for name, (process, path) in recorders.items():
        process.wait(timeout=seconds + 30)
        report[name] = stack_profile.summarise(name, path).as_dict() if path.exists() else "no samples"
    return latencies, report


def summary(latencies: list[float]) -> dict[str, float]:
    return {
        "n": len(latencies),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "mean_ms": round(statistics.fmean(latencies), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="identify latency: pipeline vs in-process")
    parser.add_argument(
        "--faces",
        type=Path,
        default=Path(os.environ.get("FACESTREAM_FACES_DIR", REPO.parent / "shared" / "faces")),
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--api-key", default=os.environ.get("FACESTREAM_BENCH_API_KEY"))
    parser.add_argument(
        "--profile", type=float, default=0.0, help="seconds of py-spy sampling under identify load (0: none)"
    )
    parser.add_argument(
        "--stack-log",
        type=Path,
        default=REPO / "var" / "log" / "stack.log",
        help="the stack's JSON log (make up writes var/log/stack.log): the hop breakdown reads it",
    )
    parser.add_argument("--saturation-clients", type=int, default=8)
    parser.add_argument("--saturation-seconds", type=float, default=15.0, help="0: no saturation step")
    args = parser.parse_args()

    settings = Settings()
    key = args.api_key or (REPO / "var" / "dev-api-key").read_text().strip()
    people = load_people(args.faces)
    probes = [paths[0].read_bytes() for paths in people.values()]
    base_url = f"http://{settings.api_host}:{settings.api_port}"
    tag = f"bench{uuid.uuid4().hex[:6]}"
    # Built first: the seconds it takes are idle time in which the server would close the
    # client's kept-alive connection, and a request racing that close fails.
    baseline_work = InProcess(settings, people)
    with httpx.Client(base_url=base_url, headers={"X-API-Key": key}, timeout=120) as client:
        size_before = client.get("/stats").json()["gallery_size"]
        sequential = enroll_all(client, people, f"{tag}s", clients=1)
        concurrent = enroll_all(client, people, f"{tag}c", clients=args.clients)
        expected = size_before + sequential["accepted"] + concurrent["accepted"]
        deadline = time.monotonic() + 120
        while client.get("/stats").json()["gallery_size"] < expected and time.monotonic() < deadline:
            time.sleep(0.5)
        gallery_size = client.get("/stats").json()["gallery_size"]
        baseline_work.pad_to(gallery_size)
        pipeline_latencies(client, probes[:3], 1)  # warm-up
        baseline_work.identify(probes[0])
        latencies, in_process, identify_hops = traced_latencies(
            client, settings, baseline_work, probes, args.rounds, args.stack_log
        )
        pipeline = summary(latencies)
        profiles = profiled(client, probes, args.rounds, args.profile)[1] if args.profile else {}
        saturated = (
            saturation(client, probes, args.saturation_clients, args.saturation_seconds)
            if args.saturation_seconds
            else {}
        )
    enroll_rate = baseline_work.enroll_rate
    baseline = summary(in_process)
    report = {
        "machine": f"{os.cpu_count()} cores",
        "enroll_sequential": sequential,
        "enroll_concurrent": {**concurrent, "clients": args.clients},
        "identify_pipeline": pipeline,
        "identify_in_process": baseline,
        "faces_searched": {"stack_gallery": gallery_size, "in_process_index": len(baseline_work.index)},
        "ratio_p50": round(pipeline["p50_ms"] / baseline["p50_ms"], 2),
        "ratio_p95": round(pipeline["p95_ms"] / baseline["p95_ms"], 2),
        # The same probe in the same turn, request by request: unlike two p50s, it does not
        # depend on which probe each one falls on.
        "ratio_p50_paired": round(
            statistics.median(p / b for p, b in zip(latencies, in_process, strict=True)), 2
        ),
        "enroll_in_process_images_per_s": round(enroll_rate, 2),
        "ratio_enroll_sequential": round(sequential["images_per_s"] / enroll_rate, 2),
        "ratio_enroll_concurrent": round(concurrent["images_per_s"] / enroll_rate, 2),
        "identify_hops": identify_hops,
        "saturation": saturated,
        "in_process_identify_per_s": round(1000 / baseline["mean_ms"], 2),
        "ratio_saturation": (
            round(saturated["answers_per_s"] * baseline["mean_ms"] / 1000, 2) if saturated else None
        ),
        "profiles_under_identify_load": profiles,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
