"""The shared body of the image workers: parse a micro-batch, prepare each image, embed all at once."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
from pydantic import BaseModel

from core.errors import ErrorCode, FacestreamError
from core.kafka import decode, header_map
from core.logging import get_logger
from core.metrics import Metrics
from core.quality_policy import bar as quality_bar
from core.quality_policy import resolve_filter
from core.settings import TopicNames
from engine.gate import apply_bar, scored
from engine.types import Engine as FaceEngine
from engine.types import PreparedImage
from schemas.envelope import Envelope
from schemas.events import StageTimings
from streams.handlers.dead_letter import dead_letter_for
from streams.handlers.output import Output

C = TypeVar("C", bound=BaseModel)

log = get_logger(__name__)


@dataclass
class Analysed(Generic[C]):
    """One command after the engine: its prepared face and vector, or the error that stopped it."""

    envelope: Envelope[C]
    prepared: PreparedImage | None = None
    vectors: list[np.ndarray] = field(default_factory=list)  # one per face the policy kept
    error: FacestreamError | None = None
    timings: StageTimings = field(default_factory=StageTimings)

    @property
    def vector(self) -> np.ndarray | None:
        """The main face's vector (the only one unless the policy is `all`)."""
        return self.vectors[0] if self.vectors else None


def analyse_batch(
    engine: FaceEngine, envelopes: Sequence[Envelope[Any]], default_filter: str = "none"
) -> list[Analysed[Any]]:
    """CPU-bound: runs in the worker's executor thread, never on the event loop.

    Each command's quality filter (resolved by the facade or the gallery; `default_filter`, the
    operation's setting, only for a command produced without one) sets the bar its faces must
    reach.
    """
    items = [Analysed(envelope=e) for e in envelopes]
    for item in items:
        try:
            item.prepared = engine.prepare(item.envelope.payload.image)
        except FacestreamError as exc:
            item.error = exc
        except Exception as exc:  # a decoder or model bug must not stall the partition
            log.exception("prepare_failed", correlation_id=item.envelope.correlation_id)
            item.error = FacestreamError(ErrorCode.INTERNAL, f"image processing failed: {type(exc).__name__}")
    ready = [i for i in items if i.prepared is not None]
    started = time.perf_counter()
    crops = [face.crop for i in ready if i.prepared is not None for face in i.prepared.faces]
    vectors, qualities = engine.embed_scored(crops) if crops else (np.zeros((0, 0)), None)
    embed_ms = (time.perf_counter() - started) * 1000 / max(len(ready), 1)
    position = 0
    for item in ready:
        if item.prepared is None:
            continue
        count = len(item.prepared.faces)
        span = slice(position, position + count)
        position += count
        faces = scored(item.prepared.faces, None if qualities is None else qualities[span])
        chosen = resolve_filter(getattr(item.envelope.payload, "quality_filter", None), default_filter)
        try:
            kept, item.vectors = apply_bar(faces, list(vectors[span]), quality_bar(chosen))
        except FacestreamError as exc:
            item.error = exc  # no vector: the item is refused; its timings stay
            continue
        item.prepared = dataclasses.replace(item.prepared, faces=kept)
    for item in items:
        t = item.prepared.timings if item.prepared else {}
        item.timings = StageTimings(
            decode_ms=t.get("decode_ms", 0.0),
            detect_ms=t.get("detect_ms", 0.0),
            align_ms=t.get("align_ms", 0.0),
            embed_ms=embed_ms if item.vector is not None else 0.0,
        )
    return items


Parsed = tuple[Envelope[Any], dict[str, str]]


def parse_messages(
    messages: Sequence[Any],
    command_type: type[C],
    *,
    stage: str,
    topics: TopicNames,
    metrics: Metrics,
) -> tuple[list[Parsed], list[Output]]:
    """Commands with their headers, and a dead letter for every record that is not one."""
    parsed: list[Parsed] = []
    letters: list[Output] = []
    for msg in messages:
        headers = header_map(msg.headers)
        try:
            parsed.append((decode(msg.value, command_type), headers))
        except FacestreamError as exc:
            letters.append(dead_letter_for(msg, exc, stage=stage, topics=topics))
            metrics.errors.labels(stage, exc.code.value).inc()
    return parsed, letters


def observe_timings(metrics: Metrics, timings: StageTimings) -> None:
    for stage in ("decode", "detect", "align", "embed"):
        value = getattr(timings, f"{stage}_ms")
        if value:
            metrics.stage_latency.labels(stage).observe(value / 1000)
