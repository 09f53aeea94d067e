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

from aiokafka import TopicPartition

from core.errors import FacestreamError
from core.kafka import make_consumer, partitions_of
from core.logging import get_logger
from core.settings import Settings
from index import registry
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


async def replay(settings: Settings, model: ModelInfo, *, backend: str, target: Path) -> ReplayReport:
    """Read every partition up to the end offsets seen at start; snapshot the result."""
    topic = settings.topics.embeddings
    options = settings.index_options if backend == settings.index_backend else {}
    index = registry.create(backend, dim=model.dim, model_id=model.id, **options)
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    started = time.perf_counter()
    records = skipped = 0
    try:
        partitions = [TopicPartition(topic, p) for p in await partitions_of(consumer, topic)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        positions = {tp: await consumer.position(tp) for tp in partitions}
        while any(positions[tp] < ends[tp] for tp in partitions):
            batches = await consumer.getmany(timeout_ms=1000, max_records=BATCH)
            pending = PendingChanges()
            for tp, batch in batches.items():
                for record in batch:
                    if record.offset >= ends[tp]:
                        continue  # past the cut: the new replica replays it as its tail
                    records += 1
                    try:
                        pending.fold(record, model_id=model.id)
                    except FacestreamError as exc:
                        skipped += 1
                        log.warning("replay_skipped", offset=record.offset, reason=exc.code.value)
            pending.apply(index)
            for tp in partitions:
                positions[tp] = min(await consumer.position(tp), ends[tp])
        offsets = {tp.partition: ends[tp] for tp in partitions}
    finally:
        await consumer.stop()
    write_snapshot(index, target, offsets=offsets, topic=topic)
    seconds = time.perf_counter() - started
    return ReplayReport(
        backend=backend,
        snapshot_dir=str(target),
        records=records,
        faces=len(index),
        skipped=skipped,
        seconds=round(seconds, 3),
        records_per_s=round(records / seconds, 1) if seconds else 0.0,
        offsets=offsets,
    )
