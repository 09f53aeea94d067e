"""Enrollment: one EnrollFace command -> a FaceEmbedded fact and an ImageEnrolled outcome."""

from __future__ import annotations

import numpy as np

from core.crypto import ImageCipher
from core.errors import FacestreamError
from core.galleries import face_id_for, gallery_header
from core.settings import TopicNames
from core.vectors import to_embedding
from engine.types import PreparedFace
from schemas.envelope import Envelope, Header
from schemas.events import (
    EnrollFace,
    EnrollmentImage,
    FaceEmbedded,
    ImageEnrolled,
    ModelInfo,
    StageTimings,
)
from streams.handlers.output import Output


def embedded_fact(
    command: EnrollFace,
    face: PreparedFace,
    vector: np.ndarray,
    *,
    content_hash: str,
    model: ModelInfo,
) -> FaceEmbedded:
    return FaceEmbedded(
        # Deterministic: the same photo enrolled twice for a person is the same face, not two.
        face_id=face_id_for(command.gallery, command.person_id, content_hash),
        person_id=command.person_id,
        gallery=command.gallery,
        enrollment_id=command.enrollment_id,
        embedding=to_embedding(vector, model),
        quality=face.quality,
        det_score=face.det_score,
        bbox=face.bbox,
        content_hash=content_hash,
        filename=command.filename,
    )


def accepted(
    command: EnrollFace,
    fact: FaceEmbedded,
    *,
    partition: int,
    offset: int,
    timings: StageTimings,
) -> ImageEnrolled:
    return ImageEnrolled(
        enrollment_id=command.enrollment_id,
        person_id=command.person_id,
        gallery=command.gallery,
        image_index=command.image_index,
        image_count=command.image_count,
        filename=command.filename,
        status="accepted",
        model=fact.embedding.model.id,
        face_id=fact.face_id,
        quality=fact.quality,
        bbox=fact.bbox,
        embedding_partition=partition,
        embedding_offset=offset,
        timings=timings,
    )


def rejected(
    command: EnrollFace, error: FacestreamError, *, model: ModelInfo, timings: StageTimings
) -> ImageEnrolled:
    return ImageEnrolled(
        enrollment_id=command.enrollment_id,
        person_id=command.person_id,
        gallery=command.gallery,
        image_index=command.image_index,
        image_count=command.image_count,
        filename=command.filename,
        status="rejected",
        model=model.id,
        reason=error.code.value,
        message=error.message,
        timings=timings,
    )


def embedding_output(fact: FaceEmbedded, *, topics: TopicNames, correlation_id: str) -> Output:
    return Output(
        topic=topics.embeddings,
        key=fact.face_id,
        envelope=Envelope.wrap(fact, correlation_id=correlation_id),
        headers=embedding_headers(fact),
    )


def embedding_headers(fact: FaceEmbedded) -> dict[str, str]:
    """What a reader of the embeddings log routes by without parsing the value."""
    return _with_gallery(
        {Header.PERSON_ID: fact.person_id, Header.MODEL_ID: fact.embedding.model.id}, fact.gallery
    )


def _with_gallery(headers: dict[str, str], gallery: str) -> dict[str, str]:
    """Readers route a record to its gallery's index by this header, without its value."""
    name = gallery_header(gallery)
    return {**headers, Header.GALLERY: name} if name else headers


def outcome_outputs(
    outcome: ImageEnrolled, *, topics: TopicNames, correlation_id: str, reply_to: str | None
) -> list[Output]:
    """The outcome is a fact for the projection, and the reply for whoever asked.

    Only the project's reply topics are accepted from a header, so that a producer cannot
    make the pipeline write into arbitrary topics (the embeddings log above all).
    """
    envelope = Envelope.wrap(outcome, correlation_id=correlation_id)
    outputs = [Output(topic=topics.enrollment_outcomes, key=outcome.enrollment_id, envelope=envelope)]
    if reply_to and topics.is_reply_topic(reply_to):
        outputs.append(Output(topic=reply_to, key=outcome.enrollment_id, envelope=envelope))
    return outputs


def retained_image(command: EnrollFace, fact: FaceEmbedded, *, cipher: ImageCipher) -> EnrollmentImage:
    return EnrollmentImage(
        face_id=fact.face_id,
        person_id=fact.person_id,
        gallery=fact.gallery,
        enrollment_id=command.enrollment_id,
        filename=command.filename,
        content_hash=fact.content_hash,
        sealed=cipher.enabled,
        image=cipher.seal(command.image, bound_to=fact.face_id),
    )


def image_output(image: EnrollmentImage, *, topics: TopicNames, correlation_id: str) -> Output:
    return Output(
        topic=topics.enrollment_images,
        key=image.face_id,
        envelope=Envelope.wrap(image, correlation_id=correlation_id),
        headers=_with_gallery({}, image.gallery),
    )
