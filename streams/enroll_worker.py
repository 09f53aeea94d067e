"""Enroll worker (faust): EnrollFace micro-batches -> FaceEmbedded facts + ImageEnrolled outcomes."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust

from core.crypto import ImageCipher
from core.errors import ErrorCode, FacestreamError
from core.kafka import decode, event_type, header_map
from core.logging import get_logger
from core.metrics import Metrics
from core.settings import Settings
from engine.types import Engine as FaceEngine
from schemas.envelope import Header
from schemas.events import EnrollFace, ErasePerson
from streams.engines import Engines, analyse_by_pack
from streams.faust_app import worker_app
from streams.gallery_gate import GalleryGate, Lookup, static_lookup
from streams.handlers import enroll as handlers
from streams.handlers import erasure as erasure_handlers
from streams.handlers.dead_letter import dead_letter_for
from streams.handlers.output import Output, traced
from streams.image_stage import observe_timings, parse_messages
from streams.log_ends import KafkaLogEnds, LogEnds
from streams.producing import send_all
from streams.reply_topics import ReplyTopics
from streams.warm_up import warm_up

log = get_logger(__name__)


class EnrollProcessor:
    """Thin: decode -> engine -> pure handlers -> produce. Offsets commit after the acks.

    The topic also carries `ErasePerson` commands under the same person-id key: a batch is cut
    at each one, and the erasure is forwarded only once every enrollment before it has its
    embedding acknowledged, with the log's end offsets as the barrier those lie below."""

    def __init__(
        self,
        settings: Settings,
        engine: FaceEngine | Engines,
        metrics: Metrics,
        sender: Any,
        replies: ReplyTopics | None = None,
        log_ends: LogEnds | None = None,
        galleries: Lookup | None = None,
    ) -> None:
        self.settings = settings
        self.engines = engine if isinstance(engine, Engines) else Engines(settings.model_pack, engine)
        self.metrics = metrics
        self.sender = sender
        self.replies = replies or ReplyTopics(settings, metrics)
        self.log_ends = log_ends or KafkaLogEnds(settings)
        self.cipher = ImageCipher(settings.image_encryption_key.get_secret_value())
        self.gate = GalleryGate(galleries or static_lookup(settings), operation="enroll")
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="enroll-engine")

    async def warm(self) -> None:
        """Before the first command (``streams.warm_up``)."""
        await warm_up(self.gate.lookup, self.engines.default, self.executor)

    async def process(self, messages: Sequence[Any]) -> None:
        enrollments: list[Any] = []
        for message in messages:
            if not _is_erasure(message):
                enrollments.append(message)
                continue
            if enrollments:
                await self._enroll(enrollments)
                enrollments = []
            await self._forward_erasure(message)
        if enrollments:
            await self._enroll(enrollments)

    async def _forward_erasure(self, message: Any) -> None:
        topics = self.settings.topics
        try:
            command = decode(message.value, ErasePerson)
        except FacestreamError as exc:
            self.metrics.errors.labels("enroll", exc.code.value).inc()
            await send_all(self.sender, [dead_letter_for(message, exc, stage="enroll", topics=topics)])
            return
        ordered = erasure_handlers.ordered(
            command,
            barrier=await self.log_ends.of(topics.embeddings),
            outcomes_barrier=await self.log_ends.of(topics.enrollment_outcomes),
            topics=topics,
        )
        await send_all(self.sender, traced([ordered], header_map(message.headers)))
        log.info(
            "erasure_ordered",
            correlation_id=command.correlation_id,
            person_id=command.payload.person_id,
            barrier=ordered.envelope.payload.barrier,
        )

    async def _enroll(self, messages: Sequence[Any]) -> None:
        topics = self.settings.topics
        parsed, letters = parse_messages(
            messages, EnrollFace, stage="enroll", topics=topics, metrics=self.metrics
        )
        admitted, packs, refused = await self.gate.admit([envelope for envelope, _ in parsed])
        analysed = await analyse_by_pack(
            self.engines, self.executor, admitted, packs, refused, self.settings.quality_filter_enroll
        )
        items = [item for item, _ in analysed]
        model_of = {id(item): engine.model for item, engine in analysed}
        self.metrics.batch_size.labels("enroll").observe(len(items))

        embedded = [
            (item, item.prepared, item.vector)
            for item in items
            if item.prepared is not None and item.vector is not None
        ]
        facts = [
            handlers.embedded_fact(
                item.envelope.payload,
                prepared.faces[0],
                vector,
                content_hash=prepared.content_hash,
                model=model_of[id(item)],
            )
            for item, prepared, vector in embedded
        ]
        incoming = {id(item): headers for item, (_, headers) in zip(items, parsed, strict=True)}
        if self.settings.retain_images:
            # Images first: an embedding never exists without the image to re-embed it from.
            await send_all(
                self.sender,
                [
                    handlers.image_output(
                        handlers.retained_image(i.envelope.payload, f, cipher=self.cipher),
                        topics=topics,
                        correlation_id=i.envelope.correlation_id,
                    )
                    for f, (i, _, _) in zip(facts, embedded, strict=True)
                ],
            )
        acks = await send_all(
            self.sender,
            [
                traced(
                    [handlers.embedding_output(f, topics=topics, correlation_id=i.envelope.correlation_id)],
                    incoming[id(i)],
                )[0]
                for f, (i, _, _) in zip(facts, embedded, strict=True)
            ],
        )
        accepted = {id(i): (f, a) for (i, _, _), f, a in zip(embedded, facts, acks, strict=True)}

        outputs: list[Output] = list(letters)
        for item, (envelope, headers) in zip(items, parsed, strict=True):
            command = envelope.payload
            if id(item) in accepted:
                fact, ack = accepted[id(item)]
                outcome = handlers.accepted(
                    command, fact, partition=ack.partition, offset=ack.offset, timings=item.timings
                )
                self.metrics.inferences.labels(model_of[id(item)].id).inc()
            else:
                error = item.error or FacestreamError(ErrorCode.INTERNAL, "no embedding produced")
                outcome = handlers.rejected(command, error, model=model_of[id(item)], timings=item.timings)
                self.metrics.errors.labels("enroll", error.code.value).inc()
            outputs += traced(
                handlers.outcome_outputs(
                    outcome,
                    topics=topics,
                    correlation_id=envelope.correlation_id,
                    reply_to=headers.get(Header.REPLY_TO),
                ),
                headers,
            )
            observe_timings(self.metrics, item.timings)
            log.info(
                "image_enrolled" if outcome.status == "accepted" else "image_rejected",
                correlation_id=envelope.correlation_id,
                person_id=command.person_id,
                face_id=outcome.face_id,
                reason=outcome.reason,
                **item.timings.model_dump(),
            )
        await send_all(self.sender, await self.replies.deliverable(outputs))


def _is_erasure(message: Any) -> bool:
    return event_type(message) == ErasePerson.__name__


def build_enroll_app(settings: Settings, engine: Engines, metrics: Metrics) -> faust.App:
    return worker_app(
        settings,
        stage="enroll",
        topic=settings.topics.enroll_requests,
        build=lambda producer, catalog: EnrollProcessor(
            settings, engine, metrics, producer, galleries=catalog.lookup
        ),
    )
