"""`facestream replay`: build an index (of any backend) from the compacted embeddings log,
snapshot it for a new replica id, and leave the serving replicas alone.

With a gallery, only that gallery's records are kept (a replica rebuilds one gallery the same
way, in place, when the gallery's definition gets a new generation). The log is read in bulk
(``bulk_log``, ``bulk_fold``).

The swap is then a start and a stop: start a replica with the new id (and backend) — it
loads the snapshot, replays only the tail, and joins the query group once caught up — then
stop the old one. Nothing in the API or the workers changes.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from core.logging import get_logger
from core.settings import Settings
from index import registry
from index.base import VectorIndex
from index.labelled import LabelledIndex
from index.snapshot import write_snapshot
from schemas.events import DEFAULT_GALLERY, ModelInfo
from streams import bulk_log
from streams.bulk_fold import Scratch, fold_bulk
from streams.bulk_readers import read_parts, warm_up
from streams.log_fold import apply_to

log = get_logger(__name__)


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
    gallery: str = DEFAULT_GALLERY

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class BuiltIndex:
    index: VectorIndex
    offsets: dict[int, int]
    records: int
    skipped: int


def fold_into(
    settings: Settings,
    index: VectorIndex,
    *,
    gallery: str,
    starts: dict[int, int],
    ends: dict[int, int],
) -> tuple[int, int]:
    """Fold the records of ``gallery`` between ``starts`` and ``ends`` into ``index``, in bulk
    (blocking: run it on a thread); returns (records read, records skipped as poison)."""
    wanted = {gallery: (index.model_id, index.dim)}

    if isinstance(index, LabelledIndex):
        index.reserve(sum(max(end - starts.get(p, 0), 0) for p, end in ends.items()))
    records = skipped = 0
    scratch = Scratch()
    parts = read_parts(settings, settings.topics.embeddings, starts, ends, wanted, defer_others=False)
    try:
        while (part := parts.next()) is not None:
            records += part.records
            if part.raw is not None:
                batch = part.raw
                folded = fold_bulk(batch, wanted.get, scratch)
                for position, exc in folded.errors:
                    skipped += 1
                    log.warning("replay_skipped", offset=batch.offsets[position], reason=exc.code.value)
            else:
                assert part.folded is not None
                folded = part.folded
            apply_to(index, folded.batch, only=gallery)
    finally:
        parts.close()
    return records, skipped


async def build_from_log(
    settings: Settings, model: ModelInfo, *, backend: str, gallery: str = DEFAULT_GALLERY
) -> BuiltIndex:
    """Fold every partition of the embeddings topic, up to the end offsets seen at start,
    keeping the records of ``gallery`` only."""
    warm_up()  # reader processes, for a long log, start while its ends are looked up
    topic = settings.topics.embeddings
    options = settings.index_options if backend == settings.index_backend else {}
    index = registry.create(backend, dim=model.dim, model_id=model.id, **options)
    # One metadata request: aiokafka's consumer, started for it, took half a second of every rebuild.
    partitions = await asyncio.to_thread(bulk_log.partitions, settings, topic)
    ends = await asyncio.to_thread(bulk_log.cut_ends, settings, topic, partitions)
    records, skipped = await asyncio.to_thread(
        fold_into, settings, index, gallery=gallery, starts=dict.fromkeys(partitions, 0), ends=ends
    )
    return BuiltIndex(index, ends, records, skipped)


async def replay(
    settings: Settings, model: ModelInfo, *, backend: str, target: Path, gallery: str = DEFAULT_GALLERY
) -> ReplayReport:
    """Build one gallery's index from the log and snapshot it (with the offsets it reflects) at
    `target`."""
    started = time.perf_counter()
    built = await build_from_log(settings, model, backend=backend, gallery=gallery)
    write_snapshot({gallery: built.index}, target, offsets=built.offsets, topic=settings.topics.embeddings)
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
        gallery=gallery,
    )
