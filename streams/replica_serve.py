"""Query serving: identify queries from the replica group's topic, answered from the index state.

What a poll returns is answered as one batch per gallery: every query of a gallery that can be
answered now is searched in one ``search_persons`` call (a gallery this replica does not hold
answers no candidates and a size of 0); queries waiting for read-your-writes offsets wait together and
are then searched as a second batch. Poison is dead-lettered; a query of another model is
answered with a MODEL_MISMATCH failure. Replies continue the trace of the query they answer.
"""

from __future__ import annotations

import asyncio

import numpy as np
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from core.errors import ErrorCode, FacestreamError
from core.kafka import decode, header_map, make_consumer
from core.logging import get_logger
from core.metrics import Metrics
from core.settings import Settings
from core.vectors import from_embedding
from schemas.envelope import Envelope, Header
from schemas.events import ErrorInfo, IdentifyFailed, IdentifyQuery, ModelInfo
from streams.handlers import identify as identify_handlers
from streams.handlers.dead_letter import dead_letter_for
from streams.handlers.output import Output, traced
from streams.handlers.search import answer
from streams.log_fold import usable_vector
from streams.producing import Sender, producing_step
from streams.replica_state import ReplicaState
from streams.reply_topics import ReplyTopics

log = get_logger(__name__)

Query = tuple[Envelope[IdentifyQuery], str]  # the query and the topic its reply goes to


def _check_query(query: IdentifyQuery) -> None:
    usable_vector(query.embedding)
    if query.top_k < 1:
        raise FacestreamError(ErrorCode.INVALID_MESSAGE, f"top_k must be >= 1, got {query.top_k}")


class QueryServer:
    def __init__(self, settings: Settings, metrics: Metrics, model: ModelInfo, state: ReplicaState) -> None:
        self.settings = settings
        self.metrics = metrics
        self.model = model
        self.state = state
        self.replies = ReplyTopics(settings, metrics)
        self.consumer: AIOKafkaConsumer | None = None

    async def run(self, producer: Sender) -> None:
        """Join the query group once the index is caught up, then answer until cancelled."""
        await self.state.ready.wait()
        self.consumer = make_consumer(
            self.settings,
            self.settings.topics.identify_queries,
            group_id=f"{self.settings.topic_prefix}.{self.settings.replica_group}",
            auto_offset_reset="latest",
        )
        await self.consumer.start()
        step = producing_step(
            self.consumer,
            producer,
            self._answer,
            stage="search",
            topics=self.settings.topics,
            commit=True,
            max_records=256,
        )
        await step.run()

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()

    async def _answer(self, records: list[ConsumerRecord[bytes, bytes]]) -> list[Output]:
        return await self.replies.deliverable(await self.handle(records))

    async def handle(self, records: list[ConsumerRecord[bytes, bytes]]) -> list[Output]:
        outputs: list[Output] = []
        now: list[Query] = []
        waiting: list[tuple[Query, dict[int, int]]] = []
        for record in records:
            parsed = self._parse(record, outputs)
            if parsed is None:
                continue
            wanted = parsed[0].payload.min_offsets
            if self.state.has_applied(wanted):
                now.append(parsed)
            else:
                waiting.append((parsed, wanted))
        if now:
            outputs += await self._search(now)
        if waiting:
            timeout = self.settings.read_your_writes_timeout_s
            done = await asyncio.gather(*(self.state.caught_up(w, timeout) for _, w in waiting))
            outputs += [self._not_caught_up(q) for (q, _), ok in zip(waiting, done, strict=True) if not ok]
            ready = [q for (q, _), ok in zip(waiting, done, strict=True) if ok]
            if ready:
                outputs += await self._search(ready)
        incoming = {(r.key or b"").decode(errors="replace"): header_map(r.headers) for r in records}
        return [traced([o], incoming.get(o.key or "", {}))[0] for o in outputs]

    def _parse(self, record: ConsumerRecord[bytes, bytes], outputs: list[Output]) -> Query | None:
        """The query and its reply topic; or None, with a dead letter or a failure in ``outputs``."""
        topics = self.settings.topics
        try:
            envelope = decode(record.value, IdentifyQuery)
            _check_query(envelope.payload)
        except FacestreamError as exc:
            outputs.append(dead_letter_for(record, exc, stage="search", topics=topics))
            return None
        reply_to = identify_handlers.reply_topic(header_map(record.headers).get(Header.REPLY_TO), topics)
        query = envelope.payload
        expected = self.state.expect(query.gallery)
        model_id = expected[0] if expected is not None else self.model.id
        if expected is not None and query.embedding.model.id != model_id:
            error = ErrorInfo(
                code=ErrorCode.MODEL_MISMATCH.value,
                message=f"query of model {query.embedding.model.id}, index of {model_id}",
            )
            outputs.append(self._failure(envelope, reply_to, error))
            return None
        return envelope, reply_to

    def _not_caught_up(self, query: Query) -> Output:
        envelope, reply_to = query
        error = ErrorInfo(
            code=ErrorCode.UNAVAILABLE.value,
            message=f"replica {self.settings.replica_id} has not applied the requested offsets "
            f"within {self.settings.read_your_writes_timeout_s:g}s",
        )
        return self._failure(envelope, reply_to, error)

    @staticmethod
    def _failure(envelope: Envelope[IdentifyQuery], reply_to: str, error: ErrorInfo) -> Output:
        failure = IdentifyFailed(
            request_id=envelope.payload.request_id, error=error, timings=envelope.payload.timings
        )
        return identify_handlers.reply_output(
            failure, correlation_id=envelope.correlation_id, reply_to=reply_to
        )

    async def _search(self, queries: list[Query]) -> list[Output]:
        """One batch per gallery named by the queries."""
        by_gallery: dict[str, list[Query]] = {}
        for query in queries:
            by_gallery.setdefault(query[0].payload.gallery, []).append(query)
        outputs = []
        for gallery, batch in by_gallery.items():
            outputs += await self._search_gallery(gallery, batch)
        return outputs

    async def _search_gallery(self, gallery: str, queries: list[Query]) -> list[Output]:
        vectors = np.stack([from_embedding(e.payload.embedding) for e, _ in queries])
        found = await self.state.search(vectors, max(e.payload.top_k for e, _ in queries), gallery)
        self.metrics.stage_latency.labels("search").observe(found.search_ms / 1000)
        outputs = []
        for (envelope, reply_to), matches in zip(queries, found.matches, strict=True):
            result = answer(
                envelope.payload,
                matches,
                replica_id=self.settings.replica_id,
                gallery_size=found.gallery_size,
                search_ms=found.search_ms,
                shard=self.settings.replica_group,
                partitions=sorted(self.state.target),
            ).model_copy(update={"gallery": gallery})
            log.info(
                "searched",
                correlation_id=envelope.correlation_id,
                candidates=len(result.candidates),
                batch=len(queries),
                search_ms=round(found.search_ms, 3),
            )
            outputs.append(
                Output(
                    topic=reply_to,
                    key=result.request_id,
                    envelope=Envelope.wrap(result, correlation_id=envelope.correlation_id),
                )
            )
        return outputs
