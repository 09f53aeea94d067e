"""Folding embeddings-log records into index changes: shared by the replica and `replay`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from aiokafka.structs import ConsumerRecord

from core.errors import ErrorCode, FacestreamError
from core.kafka import decode
from core.vectors import from_embedding
from index.base import VectorIndex
from schemas.events import Embedding, FaceEmbedded


@dataclass
class PendingChanges:
    """Log records folded by key before touching the index: the last write per face wins."""

    upserts: dict[str, tuple[str, np.ndarray]] = field(default_factory=dict)
    removals: set[str] = field(default_factory=set)

    def upsert(self, face_id: str, person_id: str, vector: np.ndarray) -> None:
        self.removals.discard(face_id)
        self.upserts[face_id] = (person_id, vector)

    def remove(self, face_id: str) -> None:
        self.upserts.pop(face_id, None)
        self.removals.add(face_id)

    def fold(self, record: ConsumerRecord[bytes, bytes], *, model_id: str) -> None:
        """Apply one record's intent; raises FacestreamError for a record to dead-letter."""
        if record.value is None:
            self.remove(record.key.decode() if record.key else "")
            return
        fact = decode(record.value, FaceEmbedded).payload
        if fact.embedding.model.id != model_id:
            # Another pack's vectors belong in another index (another topic).
            raise FacestreamError(
                ErrorCode.MODEL_MISMATCH, f"model {fact.embedding.model.id} != index model {model_id}"
            )
        self.upsert(fact.face_id, fact.person_id, usable_vector(fact.embedding))

    def apply(self, index: VectorIndex) -> None:
        if self.removals:
            index.remove(self.removals)
        if self.upserts:
            face_ids = list(self.upserts)
            index.add(
                face_ids,
                [self.upserts[f][0] for f in face_ids],
                np.stack([self.upserts[f][1] for f in face_ids]),
            )

    def __len__(self) -> int:
        return len(self.upserts) + len(self.removals)


def usable_vector(embedding: Embedding) -> np.ndarray:
    """A vector the index accepts, or INVALID_MESSAGE: poison is dead-lettered, never fatal."""
    vector = from_embedding(embedding)  # wrong length or non-finite values raise
    if not np.linalg.norm(vector) > np.finfo(np.float32).tiny:
        raise FacestreamError(ErrorCode.INVALID_MESSAGE, "embedding is an all-zero vector")
    return vector
