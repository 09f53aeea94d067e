"""Identify worker (faust): IdentifyFace micro-batches -> IdentifyQuery for the index replicas."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust

from core.errors import ErrorCode, FacestreamError
from core.identification import resolve_policy
from core.logging import get_logger
from core.metrics import Metrics
from core.settings import Settings
from engine.types import Engine as FaceEngine
from schemas.envelope import Header
from schemas.events import IdentifyFace, ModelInfo
from streams.engines import Engines, analyse_by_pack
from streams.faust_app import worker_app
from streams.gallery_gate import GalleryGate, Lookup, static_lookup
from streams.handlers import identify as handlers
from streams.handlers.output import Output, traced
from streams.image_stage import observe_timings, parse_messages
from streams.producing import send_all
from streams.reply_topics import ReplyTopics
from streams.warm_up import warm_up

log = get_logger(__name__)


class IdentifyProcessor:
    def __init__(
        self,
        settings: Settings,
        engine: FaceEngine | Engines,
        metrics: Metrics,
        sender: Any,
        replies: ReplyTopics | None = None,
        galleries: Lookup | None = None,
    ) -> None:
        self.settings = settings
        self.engines = engine if isinstance(engine, Engines) else Engines(settings.model_pack, engine)
        self.metrics = metrics
        self.sender = sender
        self.replies = replies or ReplyTopics(settings, metrics)
        self.gate = GalleryGate(galleries or static_lookup(settings), operation="identify")
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="identify-engine")

    async def warm(self) -> None:
        """Before the first command (``streams.warm_up``)."""
        await warm_up(self.gate.lookup, self.engines.default, self.executor)

    async def process(self, messages: Sequence[Any]) -> None:
        topics = self.settings.topics
        parsed, outputs = parse_messages(
            messages, IdentifyFace, stage="identify", topics=topics, metrics=self.metrics
        )
        admitted, packs, refused = await self.gate.admit([envelope for envelope, _ in parsed])
        analysed = await analyse_by_pack(
            self.engines, self.executor, admitted, packs, refused, self.settings.quality_filter_identify
        )
        self.metrics.batch_size.labels("identify").observe(len(analysed))
        for (item, engine), (_, headers) in zip(analysed, parsed, strict=True):
            outputs += traced(self._outputs(item, item.envelope, headers, engine.model), headers)
        await send_all(self.sender, await self.replies.deliverable(outputs))

    def _outputs(self, item: Any, envelope: Any, headers: dict[str, str], model: ModelInfo) -> list[Output]:
        """One query per face kept by the policy (several only under `all`), or the failure."""
        topics = self.settings.topics
        reply_to = handlers.reply_topic(headers.get(Header.REPLY_TO), topics)
        command = envelope.payload
        observe_timings(self.metrics, item.timings)
        if item.vectors and item.prepared is not None:
            self.metrics.inferences.labels(model.id).inc(len(item.vectors))
            log.info(
                "face_embedded",
                correlation_id=envelope.correlation_id,
                faces=len(item.vectors),
                **item.timings.model_dump(),
            )
            # A camera's command may carry no policy: this is the stage that accepted it.
            policy = resolve_policy(self.settings, top_k=command.top_k, threshold=command.threshold)
            return [
                handlers.query_output(
                    handlers.query_for(
                        command,
                        face,
                        vector,
                        model=model,
                        policy=policy,
                        timings=item.timings,
                        face_index=index,
                        face_count=len(item.vectors),
                    ),
                    topics=topics,
                    correlation_id=envelope.correlation_id,
                    reply_to=reply_to,
                )
                for index, (face, vector) in enumerate(zip(item.prepared.faces, item.vectors, strict=True))
            ]
        error = item.error or FacestreamError(ErrorCode.INTERNAL, "no embedding produced")
        self.metrics.errors.labels("identify", error.code.value).inc()
        log.info("identify_failed", correlation_id=envelope.correlation_id, reason=error.code.value)
        return [
            handlers.reply_output(
                handlers.failed(command, error, timings=item.timings),
                correlation_id=envelope.correlation_id,
                reply_to=reply_to,
            )
        ]


def build_identify_app(settings: Settings, engine: Engines, metrics: Metrics) -> faust.App:
    return worker_app(
        settings,
        stage="identify",
        topic=settings.topics.identify_requests,
        build=lambda producer, catalog: IdentifyProcessor(
            settings, engine, metrics, producer, galleries=catalog.lookup
        ),
    )
