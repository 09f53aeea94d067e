"""Rebuild rate from the Kafka log: `facestream replay` over a synthetic compacted embeddings
topic, beside the same fold + index build from records already in memory (no Kafka), in one
run; plus snapshot load time.

    .venv/bin/python -m bench.replay --faces 50000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from aiokafka.admin import AIOKafkaAdminClient

from core.kafka import encode, envelope_headers, make_producer
from core.settings import Settings
from core.topics import ensure_topics, topic_specs
from core.vectors import to_embedding
from index import registry
from index.snapshot import read_snapshot
from schemas.events import BBox, FaceEmbedded, ModelInfo
from streams.handlers.enroll import embedding_output
from streams.log_fold import PendingChanges
from streams.replay import replay

MODEL = ModelInfo(pack="bench", recognizer="synthetic", version="1", dim=512)
TOPICS = Settings().topics


Record = tuple[bytes, bytes, list[tuple[str, bytes]]]


def synthetic_records(n: int, seed: int = 0) -> list[Record]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, MODEL.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    records = []
    for i, vector in enumerate(vectors):
        fact = FaceEmbedded(
            face_id=f"{i:032x}",
            person_id=f"person-{i // 4}",
            enrollment_id="bench",
            embedding=to_embedding(vector, MODEL),
            quality=0.9,
            det_score=0.9,
            bbox=BBox(x=0, y=0, width=100, height=100),
            content_hash="0" * 64,
        )
        # As the enroll worker writes them: binary value, person and model in headers.
        out = embedding_output(fact, topics=TOPICS, correlation_id="bench")
        records.append(
            (fact.face_id.encode(), encode(out.envelope), envelope_headers(out.envelope, **out.headers))
        )
    return records


class _Record:
    """The shape of an aiokafka ConsumerRecord that folding reads."""

    def __init__(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        self.key, self.value, self.headers = key, value, headers


def in_memory_rebuild(records: list[Record]) -> float:
    started = time.perf_counter()
    index = registry.create("faiss-flat", dim=MODEL.dim, model_id=MODEL.id)
    pending = PendingChanges()
    for key, value, headers in records:
        pending.fold(_Record(key, value, headers), model_id=MODEL.id, dim=MODEL.dim)  # type: ignore[arg-type]
    pending.apply(index)
    return time.perf_counter() - started


async def produce(settings: Settings, records: list[Record]) -> float:
    producer = make_producer(settings, linger_ms=20, max_batch_size=1024 * 1024)
    await producer.start()
    started = time.perf_counter()
    try:
        futures = [await producer.send(settings.topics.embeddings, v, k, headers=h) for k, v, h in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def run(faces: int) -> dict[str, object]:
    settings = Settings(topic_prefix=f"bench{uuid.uuid4().hex[:6]}")
    specs = [s for s in topic_specs(settings) if s.name == settings.topics.embeddings]
    await ensure_topics(settings, specs)
    records = synthetic_records(faces)
    try:
        produce_s = await produce(settings, records)
        with tempfile.TemporaryDirectory() as tmp:
            report = await replay(settings, MODEL, backend="faiss-flat", target=Path(tmp) / "replica")
            started = time.perf_counter()
            read_snapshot(Path(tmp) / "replica", expected_model_id=MODEL.id, expected_topic=specs[0].name)
            load_s = time.perf_counter() - started
    finally:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        await admin.start()
        await admin.delete_topics([specs[0].name])
        await admin.close()
    memory_s = in_memory_rebuild(records)
    return {
        "faces": faces,
        "produce_records_per_s": round(faces / produce_s, 1),
        "replay_from_kafka": {"seconds": report.seconds, "records_per_s": report.records_per_s},
        "rebuild_in_memory": {"seconds": round(memory_s, 3), "records_per_s": round(faces / memory_s, 1)},
        "ratio_kafka_vs_memory": round(report.seconds / memory_s, 2),
        "snapshot_load_s": round(load_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="rebuild rate from the Kafka log")
    parser.add_argument("--faces", type=int, default=50_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.faces)), indent=2))


if __name__ == "__main__":
    main()
