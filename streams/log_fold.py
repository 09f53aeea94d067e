"""Folding embeddings-log records into index changes: shared by the replica and `replay`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from aiokafka.structs import ConsumerRecord

from core import embedding_records
from core.errors import ErrorCode, FacestreamError
from core.kafka import decode
from core.vectors import from_embedding
from index.base import VectorIndex
from schemas.envelope import Header
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

    def fold(self, record: ConsumerRecord[bytes, bytes], *, model_id: str, dim: int | None = None) -> None:
        """Apply one record's intent; raises FacestreamError for a record to dead-letter."""
        if record.value is None:
            self.remove(record.key.decode() if record.key else "")
            return
        if dim is not None and self._fold_binary(record, model_id=model_id, dim=dim):
            return
        fact = decode(record.value, FaceEmbedded).payload
        if fact.embedding.model.id != model_id:
            # Another pack's vectors belong in another index (another topic).
            raise FacestreamError(
                ErrorCode.MODEL_MISMATCH, f"model {fact.embedding.model.id} != index model {model_id}"
            )
        self.upsert(fact.face_id, fact.person_id, usable_vector(fact.embedding))

    def _fold_binary(self, record: ConsumerRecord[bytes, bytes], *, model_id: str, dim: int) -> bool:
        """The rebuild's hot path: key, headers and the vector at its fixed offset, no parsing.
        False when the record is not a binary one with its headers (the full decode follows)."""
        if not (record.key and embedding_records.is_binary(record.value)):
            return False
        headers = dict(record.headers or ())
        person, model = headers.get(Header.PERSON_ID), headers.get(Header.MODEL_ID)
        if person is None or model is None:
            return False
        if model.decode() != model_id:
            raise FacestreamError(
                ErrorCode.MODEL_MISMATCH, f"model {model.decode()} != index model {model_id}"
            )
        vector = embedding_records.vector(record.value)
        if len(vector) != dim:
            raise FacestreamError(
                ErrorCode.INVALID_MESSAGE, f"embedding of dim {len(vector)}, index dim {dim}"
            )
        self.upsert(record.key.decode(), person.decode(), checked(vector))
        return True

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
    return checked(from_embedding(embedding))  # wrong length or non-finite values raise


def checked(vector: np.ndarray) -> np.ndarray:
    """One dot product per vector: NaN, infinity and all-zero all fail the same comparison."""
    squared = float(np.dot(vector, vector))
    if not _TINY < squared < math.inf:
        reason = "an all-zero vector" if squared == 0.0 else "non-finite values"
        raise FacestreamError(ErrorCode.INVALID_MESSAGE, f"embedding has {reason}")
    return vector


_TINY = float(np.finfo(np.float32).tiny)
