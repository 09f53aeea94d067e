"""Identification: an IdentifyFace -> an IdentifyQuery for the index, or an IdentifyFailed reply."""

from __future__ import annotations

import numpy as np

from core.errors import FacestreamError
from core.identification import IdentifyPolicy
from core.settings import TopicNames
from core.vectors import to_embedding
from engine.types import PreparedFace
from schemas.envelope import Envelope
from schemas.events import (
    ErrorInfo,
    IdentifyFace,
    IdentifyFailed,
    IdentifyQuery,
    ModelInfo,
    StageTimings,
)
from streams.handlers.output import Output


def query_for(
    command: IdentifyFace,
    face: PreparedFace,
    vector: np.ndarray,
    *,
    model: ModelInfo,
    policy: IdentifyPolicy,
    timings: StageTimings,
    face_index: int = 0,
    face_count: int = 1,
) -> IdentifyQuery:
    return IdentifyQuery(
        request_id=command.request_id,
        gallery=command.gallery,
        embedding=to_embedding(vector, model),
        top_k=policy.top_k,
        threshold=policy.threshold,
        bbox=face.bbox,
        det_score=face.det_score,
        quality=face.quality,
        timings=timings,
        min_offsets=command.min_offsets,
        face_index=face_index,
        face_count=face_count,
    )


def failed(command: IdentifyFace, error: FacestreamError, *, timings: StageTimings) -> IdentifyFailed:
    return IdentifyFailed(
        request_id=command.request_id,
        error=ErrorInfo(code=error.code.value, message=error.message),
        timings=timings,
    )


def query_output(query: IdentifyQuery, *, topics: TopicNames, correlation_id: str, reply_to: str) -> Output:
    return Output(
        topic=topics.identify_queries,
        key=query.request_id,
        envelope=Envelope.wrap(query, correlation_id=correlation_id),
        headers={"reply_to": reply_to},
    )


def reply_output(payload: IdentifyFailed, *, correlation_id: str, reply_to: str) -> Output:
    return Output(
        topic=reply_to,
        key=payload.request_id,
        envelope=Envelope.wrap(payload, correlation_id=correlation_id),
    )


def reply_topic(requested: str | None, topics: TopicNames) -> str:
    """Where the answer goes: a facade's own reply topic, else the shared results topic.

    Only the project's reply topics are accepted from a header, so that a producer cannot
    make the pipeline write into arbitrary topics.
    """
    if requested and topics.is_reply_topic(requested):
        return requested
    return topics.identify_results
