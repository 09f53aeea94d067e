"""Index replica: rebuilds its index from the compacted embeddings log and answers identify queries.

Startup loads the latest usable snapshot (the index plus the log offsets it reflects) and
replays only the tail; without one, it replays every partition from the beginning. It joins
the query consumer group only once caught up to the high-water mark seen at startup, so a
restoring replica never answers from a partial gallery.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Literal

import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord

from core.errors import ErrorCode, FacestreamError
from core.kafka import decode, header_map, make_consumer, make_producer, partitions_of
from core.logging import get_logger
from core.metrics import Metrics
from core.settings import Settings
from core.vectors import from_embedding
from index import registry
from index.base import VectorIndex, search_persons
from index.snapshot import SnapshotUnusable, read_snapshot, write_snapshot
from schemas.envelope import Envelope, Header
from schemas.events import (
    ErrorInfo,
    IdentifyFailed,
    IdentifyQuery,
    ModelInfo,
    ReplicaStatus,
)
from streams.handlers import identify as identify_handlers
from streams.handlers.dead_letter import dead_letter_for
from streams.handlers.output import Output, traced
from streams.handlers.search import answer
from streams.log_fold import PendingChanges, usable_vector
from streams.producing import send_all
from streams.reply_topics import ReplyTopics

log = get_logger(__name__)


def _check_query(query: IdentifyQuery) -> None:
    usable_vector(query.embedding)
    if query.top_k < 1:
        raise FacestreamError(ErrorCode.INVALID_MESSAGE, f"top_k must be >= 1, got {query.top_k}")


class IndexReplica:
    def __init__(self, settings: Settings, metrics: Metrics, model: ModelInfo) -> None:
        self.settings = settings
        self.metrics = metrics
        self.model = model
        self.topic = settings.topics.embeddings
        self.snapshot_dir = settings.index_dir / settings.replica_id
        self.index: VectorIndex = registry.create(
            settings.index_backend, dim=model.dim, model_id=model.id, **settings.index_options
        )
        self.applied: dict[int, int] = {}
        self.snapshot_offsets: dict[int, int] = {}
        self.target: dict[int, int] = {}
        self.end_offsets: dict[int, int] = {}
        self.restored_from: Literal["snapshot", "log"] = "log"
        self.ready = asyncio.Event()
        self.lock = asyncio.Lock()
        self.applied_changed = asyncio.Condition()
        self.total_partitions = 0
        self.query_consumer: AIOKafkaConsumer | None = None
        self.replies = ReplyTopics(settings, metrics)

    # --- lifecycle

    async def run(self) -> None:
        # aiokafka clients bind to the running loop: create them inside it.
        self.producer: AIOKafkaProducer = make_producer(self.settings)
        self.log_consumer: AIOKafkaConsumer = make_consumer(self.settings, group_id=None)
        await self.producer.start()
        await self.log_consumer.start()
        tasks: list[asyncio.Task[None]] = []
        try:
            await self._restore()
            tasks = [
                asyncio.create_task(self._apply_loop(), name="apply"),
                asyncio.create_task(self._serve_loop(), name="serve"),
                asyncio.create_task(self._snapshot_loop(), name="snapshot"),
                asyncio.create_task(self._status_loop(), name="status"),
            ]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._shutdown()

    async def _shutdown(self) -> None:
        with contextlib.suppress(Exception):
            self._snapshot_if_changed()
        with contextlib.suppress(Exception):
            # A tombstone: a replica that left cleanly is not counted as a stale member.
            await self.producer.send_and_wait(
                self.settings.topics.replica_status, None, self.settings.replica_id.encode()
            )
        if self.query_consumer is not None:
            await self.query_consumer.stop()
        await self.log_consumer.stop()
        await self.producer.stop()

    # --- restore and apply

    async def _restore(self) -> None:
        try:
            loaded = read_snapshot(
                self.snapshot_dir,
                expected_model_id=self.model.id,
                expected_topic=self.topic,
                expected_backend=self.settings.index_backend,
            )
            self.index, self.applied = loaded.index, dict(loaded.offsets)
            self.snapshot_offsets = dict(loaded.offsets)
            self.restored_from = "snapshot"
            log.info("snapshot_loaded", size=len(self.index), offsets=self.applied)
        except SnapshotUnusable as exc:
            log.warning("snapshot_unusable", reason=str(exc), action="rebuild from the log")
        partitions = await self._partitions()
        self.log_consumer.assign(partitions)
        beginnings = await self.log_consumer.beginning_offsets(partitions)
        for tp in partitions:
            start = self.applied.get(tp.partition, 0)
            # Compaction may have removed the records a snapshot stopped at: never seek
            # before the log start.
            self.log_consumer.seek(tp, max(start, beginnings[tp]))
        ends = await self.log_consumer.end_offsets(partitions)
        self.target = {tp.partition: off for tp, off in ends.items()}
        self.end_offsets = dict(self.target)
        log.info("restore_started", source=self.restored_from, target=self.target)
        self._check_ready()

    async def _partitions(self) -> list[TopicPartition]:
        """Every partition of the log, or this shard's share of them."""
        wanted = self.settings.shard_partitions
        found = await partitions_of(self.log_consumer, self.topic)
        self.total_partitions = len(found)
        return [TopicPartition(self.topic, p) for p in found if wanted is None or p in wanted]

    async def _apply_loop(self) -> None:
        while True:
            batches = await self.log_consumer.getmany(timeout_ms=500, max_records=2000)
            pending = PendingChanges()
            letters: list[Output] = []
            for records in batches.values():
                for record in records:
                    self._fold(record, pending, letters)
            async with self.lock:
                if pending.upserts or pending.removals:
                    await asyncio.to_thread(pending.apply, self.index)
                for tp in self.log_consumer.assignment():
                    self.applied[tp.partition] = await self.log_consumer.position(tp)
            async with self.applied_changed:
                self.applied_changed.notify_all()
            if letters:
                await send_all(self.producer, letters)
            self._observe()
            self._check_ready()

    def _fold(
        self, record: ConsumerRecord[bytes, bytes], pending: PendingChanges, letters: list[Output]
    ) -> None:
        try:
            pending.fold(record, model_id=self.model.id)
        except FacestreamError as exc:
            self.metrics.errors.labels("replica", exc.code.value).inc()
            letters.append(dead_letter_for(record, exc, stage="replica", topics=self.settings.topics))

    def _check_ready(self) -> None:
        if self.ready.is_set():
            return
        if all(self.applied.get(p, 0) >= end for p, end in self.target.items()):
            self.ready.set()
            log.info("replica_ready", size=len(self.index), applied=self.applied)

    # --- queries

    async def _serve_loop(self) -> None:
        await self.ready.wait()
        self.query_consumer = make_consumer(
            self.settings,
            self.settings.topics.identify_queries,
            group_id=f"{self.settings.topic_prefix}.{self.settings.replica_group}",
            auto_offset_reset="latest",
        )
        await self.query_consumer.start()
        while True:
            batches = await self.query_consumer.getmany(timeout_ms=500, max_records=64)
            records = [r for rs in batches.values() for r in rs]
            if not records:
                continue
            await send_all(self.producer, await self.replies.deliverable(await self._answer_all(records)))
            await self.query_consumer.commit()

    async def _answer_all(self, records: list[ConsumerRecord[bytes, bytes]]) -> list[Output]:
        topics = self.settings.topics
        outputs: list[Output] = []
        queries: list[tuple[Envelope[IdentifyQuery], str]] = []
        for record in records:
            headers = header_map(record.headers)
            try:
                envelope = decode(record.value, IdentifyQuery)
                if envelope.payload.embedding.model.id == self.model.id:
                    _check_query(envelope.payload)
            except FacestreamError as exc:
                outputs.append(dead_letter_for(record, exc, stage="search", topics=topics))
                continue
            reply_to = identify_handlers.reply_topic(headers.get(Header.REPLY_TO), topics)
            if envelope.payload.embedding.model.id != self.model.id:
                failure = IdentifyFailed(
                    request_id=envelope.payload.request_id,
                    error=ErrorInfo(
                        code=ErrorCode.MODEL_MISMATCH.value,
                        message=f"query of model {envelope.payload.embedding.model.id}, "
                        f"index of {self.model.id}",
                    ),
                    timings=envelope.payload.timings,
                )
                outputs.append(
                    identify_handlers.reply_output(
                        failure, correlation_id=envelope.correlation_id, reply_to=reply_to
                    )
                )
                continue
            if not await self._caught_up(envelope.payload.min_offsets):
                outputs.append(self._not_caught_up(envelope, reply_to))
                continue
            queries.append((envelope, reply_to))
        if queries:
            outputs += await self._search(queries)
        # Replies continue the trace of the query they answer.
        incoming = {(r.key or b"").decode(): header_map(r.headers) for r in records}
        return [traced([o], incoming.get(o.key or "", {}))[0] for o in outputs]

    async def _caught_up(self, wanted: dict[int, int]) -> bool:
        """Read-your-writes: wait (bounded) until the records at `wanted` offsets are applied."""
        mine = {p: o for p, o in wanted.items() if p in self.target}
        if not mine:
            return True

        def applied() -> bool:
            return all(self.applied.get(p, 0) > offset for p, offset in mine.items())

        try:
            async with self.applied_changed:
                await asyncio.wait_for(
                    self.applied_changed.wait_for(applied), self.settings.read_your_writes_timeout_s
                )
            return True
        except TimeoutError:
            return False

    def _not_caught_up(self, envelope: Envelope[IdentifyQuery], reply_to: str) -> Output:
        failure = IdentifyFailed(
            request_id=envelope.payload.request_id,
            error=ErrorInfo(
                code=ErrorCode.UNAVAILABLE.value,
                message=f"replica {self.settings.replica_id} has not applied the requested offsets "
                f"within {self.settings.read_your_writes_timeout_s:g}s",
            ),
            timings=envelope.payload.timings,
        )
        return identify_handlers.reply_output(
            failure, correlation_id=envelope.correlation_id, reply_to=reply_to
        )

    async def _search(self, queries: list[tuple[Envelope[IdentifyQuery], str]]) -> list[Output]:
        vectors = np.stack([from_embedding(e.payload.embedding) for e, _ in queries])
        k = max(e.payload.top_k for e, _ in queries)
        async with self.lock:
            started = time.perf_counter()
            matches = await asyncio.to_thread(search_persons, self.index, vectors, k)
            search_ms = (time.perf_counter() - started) * 1000 / len(queries)
            size = len(self.index)
        self.metrics.stage_latency.labels("search").observe(search_ms / 1000)
        outputs = []
        for (envelope, reply_to), found in zip(queries, matches, strict=True):
            result = answer(
                envelope.payload,
                found,
                replica_id=self.settings.replica_id,
                gallery_size=size,
                search_ms=search_ms,
                shard=self.settings.replica_group,
                partitions=sorted(self.target),
            )
            log.info(
                "identified",
                correlation_id=envelope.correlation_id,
                candidates=len(result.candidates),
                best=result.candidates[0].similarity if result.candidates else None,
                search_ms=round(search_ms, 3),
            )
            outputs.append(
                Output(
                    topic=reply_to,
                    key=result.request_id,
                    envelope=Envelope.wrap(result, correlation_id=envelope.correlation_id),
                )
            )
        return outputs

    # --- snapshots and status

    async def _snapshot_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.snapshot_interval_s)
            async with self.lock:
                await asyncio.to_thread(self._snapshot_if_changed)

    def _snapshot_if_changed(self) -> None:
        if self.applied and self.applied != self.snapshot_offsets:
            write_snapshot(self.index, self.snapshot_dir, offsets=self.applied, topic=self.topic)
            self.snapshot_offsets = dict(self.applied)
            log.info("snapshot_written", size=len(self.index), offsets=self.applied)

    async def _status_loop(self) -> None:
        partitions = list(self.log_consumer.assignment())
        while True:
            ends = await self.log_consumer.end_offsets(partitions)
            self.end_offsets = {tp.partition: off for tp, off in ends.items()}
            status = self.status()
            await self.producer.send_and_wait(
                self.settings.topics.replica_status,
                Envelope.wrap(status, correlation_id=self.settings.replica_id).model_dump_json().encode(),
                self.settings.replica_id.encode(),
            )
            await asyncio.sleep(self.settings.status_interval_s)

    @property
    def lag(self) -> int:
        """Embedding records between what this replica applied and the log's end."""
        return sum(max(end - self.applied.get(p, 0), 0) for p, end in self.end_offsets.items())

    def status(self) -> ReplicaStatus:
        return ReplicaStatus(
            replica_id=self.settings.replica_id,
            group=self.settings.replica_group,
            ready=self.ready.is_set(),
            size=len(self.index),
            model=self.model.id,
            backend=self.settings.index_backend,
            applied_offsets=dict(self.applied),
            end_offsets=dict(self.end_offsets),
            lag=self.lag,
            restored_from=self.restored_from,
            snapshot_offsets=dict(self.snapshot_offsets),
            partitions=sorted(self.target),
            total_partitions=self.total_partitions,
        )

    def _observe(self) -> None:
        replica = self.settings.replica_id
        self.metrics.index_size.labels(replica).set(len(self.index))
        self.metrics.replica_lag.labels(replica).set(self.lag)
        for partition, offset in self.applied.items():
            self.metrics.applied_offset.labels(replica, str(partition)).set(offset)
