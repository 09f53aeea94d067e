"""Embeddings-log records of several galleries, as the enroll worker writes them."""

from __future__ import annotations

import struct

import numpy as np

from core.kafka import encode, envelope_headers
from core.vectors import to_embedding
from schemas.envelope import Envelope
from schemas.events import BBox, FaceEmbedded, ModelInfo
from streams.handlers.enroll import embedding_headers
from tests.unit.streams.factories import FakeMessage

MODEL = ModelInfo(pack="test", recognizer="synthetic", version="1", dim=16)
TOPIC = "facestream.face.embeddings.v1"


def unit(rng: np.random.Generator, dim: int = MODEL.dim) -> np.ndarray:
    vector = rng.standard_normal(dim).astype(np.float32)
    return vector / np.linalg.norm(vector)


def fact(
    face_id: str, person_id: str, vector: np.ndarray, gallery: str = "default", model: ModelInfo = MODEL
) -> FaceEmbedded:
    return FaceEmbedded(
        face_id=face_id,
        person_id=person_id,
        gallery=gallery,
        enrollment_id="e",
        embedding=to_embedding(vector, model),
        quality=0.9,
        det_score=0.9,
        bbox=BBox(x=0, y=0, width=10, height=10),
        content_hash="0" * 64,
    )


def fse1(envelope: Envelope[FaceEmbedded]) -> bytes:
    """A record of the first binary format (its ids in headers only), as written before FSE2."""
    vector = envelope.payload.embedding.vector_f32le
    meta = envelope.model_dump_json(exclude={"payload": {"embedding": {"vector_f32le"}}}).encode()
    return struct.pack("<4sII", b"FSE1", len(vector) // 4, len(meta)) + vector + meta


def record(
    offset: int, face: FaceEmbedded, *, binary: bool = True, headers: bool = True, first_format: bool = False
) -> FakeMessage:
    envelope = Envelope.wrap(face, correlation_id="c")
    if first_format:
        value = fse1(envelope)
    else:
        value = encode(envelope) if binary else envelope.model_dump_json().encode()
    named = envelope_headers(envelope, **embedding_headers(face)) if headers else []
    return FakeMessage(TOPIC, 0, offset, face.face_id.encode(), value, named)


def tombstone(offset: int, face_id: str) -> FakeMessage:
    return FakeMessage(TOPIC, 0, offset, face_id.encode(), None, [])
