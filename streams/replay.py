"""`facestream replay`: build an index (of any backend) from the compacted embeddings log,
snapshot it for a new replica id, and leave the serving replicas alone.

The swap is then a start and a stop: start a replica with the new id (and backend) — it
loads the snapshot, replays only the tail, and joins the query group once caught up — then
stop the old one. Nothing in the API or the workers changes.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from core.errors import FacestreamError
from core.kafka import LogCut, make_consumer
from core.logging import get_logger
from core.settings import Settings
from index import registry
from index.base import VectorIndex
from index.snapshot import write_snapshot
from schemas.events import ModelInfo
from streams.log_fold import PendingChanges

log = get_logger(__name__)

BATCH = 5000


@dataclass(frozen=True)
class ReplayReport:
    backend: str
    snapshot_dir: str
    records: int
    faces: int
    skipped: int
    seconds: float
    records_per_s: float
    offsets: dict[int, int]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class BuiltIndex:
    index: VectorIndex
    offsets: dict[int, int]
    records: int
    skipped: int


async def build_from_log(settings: Settings, model: ModelInfo, *, backend: str) -> BuiltIndex:
    """Fold every partition of the embeddings topic, up to the end offsets seen at start."""
    topic = settings.topics.embeddings
    options = settings.index_options if backend == settings.index_backend else {}
    index = registry.create(backend, dim=model.dim, model_id=model.id, **options)
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    cut = LogCut(consumer, topic)
    records = skipped = 0
    try:
        async for batch in cut.batches(max_records=BATCH):
            pending = PendingChanges()
            for record in batch:
                records += 1
                try:
                    pending.fold(record, model_id=model.id, dim=model.dim)
                except FacestreamError as exc:
                    skipped += 1
                    log.warning("replay_skipped", offset=record.offset, reason=exc.code.value)
            pending.apply(index)
    finally:
        await consumer.stop()
    return BuiltIndex(index, cut.ends, records, skipped)


async def replay(settings: Settings, model: ModelInfo, *, backend: str, target: Path) -> ReplayReport:
    """Build an index from the log and snapshot it (with the offsets it reflects) at `target`."""
    started = time.perf_counter()
    built = await build_from_log(settings, model, backend=backend)
    write_snapshot(built.index, target, offsets=built.offsets, topic=settings.topics.embeddings)
    seconds = time.perf_counter() - started
    return ReplayReport(
        backend=backend,
        snapshot_dir=str(target),
        records=built.records,
        faces=len(built.index),
        skipped=built.skipped,
        seconds=round(seconds, 3),
        records_per_s=round(built.records / seconds, 1) if seconds else 0.0,
        offsets=built.offsets,
    )
