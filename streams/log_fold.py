"""Folding embeddings-log records into index changes, per gallery: shared by the replica and
`replay`. One record at a time here (the live tail); many at once in ``bulk_fold`` (rebuilds).

A record belongs to the gallery its binary value names (a record of the first binary format:
its `gallery` header; absent: the default gallery; a JSON record of before the binary format
says it in its payload). ``Expect`` answers, for a
gallery, the model id and dim its index holds, or None for a gallery this reader does not
index (unknown, being deleted, not wanted): such records are skipped, neither applied nor
dead-lettered. A tombstone carries its key only: the replica routes it to the gallery that
holds the face (``ReplicaState``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core import embedding_records
from core.errors import ErrorCode, FacestreamError
from core.kafka import checked_id, decode, key_text
from core.vectors import from_embedding
from index.base import VectorIndex
from schemas.envelope import Header
from schemas.events import DEFAULT_GALLERY, Embedding, FaceEmbedded

# gallery -> (model id, dim) of its index, or None where it is not indexed here.
Expect = Callable[[str], "tuple[str, int] | None"]


def only_default(model_id: str, dim: int) -> Expect:
    """The expectation of a reader of the default gallery alone (before galleries, `replay`)."""
    return lambda gallery: (model_id, dim) if gallery == DEFAULT_GALLERY else None


@dataclass(frozen=True, slots=True)
class Upsert:
    face_id: str
    gallery: str
    person_id: str
    vector: np.ndarray


def read_record(key: bytes | None, value: bytes | None, headers: Any, expect: Expect) -> Upsert | str | None:
    """One record's intent: an ``Upsert``, a face id to remove (a tombstone), or None (a gallery
    not indexed here). Raises FacestreamError for a record to dead-letter."""
    face = key_text(key)  # every record's: a key that names no face is poison, whatever the value
    if value is None:
        return face
    named = dict(headers or ())
    if key and embedding_records.is_binary(value):
        routed = embedding_records.ids(value) or _ids_in_headers(named)
        if routed is not None:
            expected = expect(routed.gallery)
            if expected is None:
                return None
            _check_model(routed.model_id, expected[0])
            vector = _check_dim(embedding_records.vector(value), expected[1])
            return Upsert(face, routed.gallery, routed.person_id, checked(vector))
    fact = decode(value, FaceEmbedded).payload
    gallery = _str(named.get(Header.GALLERY)) or fact.gallery
    expected = expect(gallery)
    if expected is None:
        return None
    _check_model(fact.embedding.model.id, expected[0])
    vector = _check_dim(usable_vector(fact.embedding), expected[1])
    return Upsert(checked_id(fact.face_id), gallery, fact.person_id, vector)


def _ids_in_headers(named: dict[str, bytes]) -> embedding_records.Ids | None:
    """A record of the first binary format: its ids travel in headers alone."""
    person, model = named.get(Header.PERSON_ID), named.get(Header.MODEL_ID)
    if person is None or model is None:
        return None
    return embedding_records.Ids(
        checked_id(_str(person) or ""), _str(model) or "", _str(named.get(Header.GALLERY)) or DEFAULT_GALLERY
    )


def _check_dim(vector: np.ndarray, dim: int) -> np.ndarray:
    if dim and len(vector) != dim:  # dim 0: the caller does not check
        raise FacestreamError(ErrorCode.INVALID_MESSAGE, f"embedding of dim {len(vector)}, index dim {dim}")
    return vector


def _str(value: bytes | None) -> str | None:
    """A header's text; one that is not UTF-8 makes its record poison."""
    if not value:
        return None
    try:
        return value.decode()
    except UnicodeDecodeError as exc:
        raise FacestreamError(ErrorCode.INVALID_MESSAGE, f"a header is not UTF-8: {exc.reason}") from exc


def _check_model(got: str, want: str) -> None:
    if got != want:
        # Another pack's vectors belong in another index.
        raise FacestreamError(ErrorCode.MODEL_MISMATCH, f"model {got} != index model {want}")


@dataclass
class GalleryUpserts:
    """Faces to add (or replace) in one gallery's index: parallel ids and ``(n, dim)`` rows."""

    faces: list[str]
    persons: list[str]
    vectors: np.ndarray

    def __len__(self) -> int:
        return len(self.faces)


@dataclass
class FoldedBatch:
    """What a batch of records does to the indexes: the last write per face wins."""

    upserts: dict[str, GalleryUpserts] = field(default_factory=dict)
    removals: list[str] = field(default_factory=list)  # routed to their gallery by the replica

    def __len__(self) -> int:
        return sum(len(u) for u in self.upserts.values()) + len(self.removals)


@dataclass
class PendingChanges:
    """Log records folded by key before touching the indexes: the last write per face wins."""

    upserts: dict[str, tuple[str, np.ndarray]] = field(default_factory=dict)
    removals: set[str] = field(default_factory=set)
    galleries: dict[str, str] = field(default_factory=dict)  # face -> gallery, when not the default

    def upsert(
        self, face_id: str, person_id: str, vector: np.ndarray, gallery: str = DEFAULT_GALLERY
    ) -> None:
        self.removals.discard(face_id)
        self.upserts[face_id] = (person_id, vector)
        if gallery == DEFAULT_GALLERY:
            self.galleries.pop(face_id, None)
        else:
            self.galleries[face_id] = gallery

    def remove(self, face_id: str) -> None:
        self.upserts.pop(face_id, None)
        self.galleries.pop(face_id, None)
        self.removals.add(face_id)

    def fold(
        self,
        record: Any,
        *,
        model_id: str | None = None,
        dim: int | None = None,
        expect: Expect | None = None,
    ) -> None:
        """Apply one record's intent; raises FacestreamError for a record to dead-letter.

        ``expect`` says which galleries are indexed; without it, the default gallery alone,
        of ``model_id`` and ``dim``.
        """
        if expect is None:
            if model_id is None:
                raise ValueError("fold needs expect, or the default gallery's model_id")
            expect = only_default(model_id, dim or 0)  # dim 0: not checked
        found = read_record(record.key, record.value, record.headers, expect)
        if isinstance(found, Upsert):
            self.upsert(found.face_id, found.person_id, found.vector, found.gallery)
        elif isinstance(found, str):
            self.remove(found)

    def folded(self) -> FoldedBatch:
        batch = FoldedBatch(removals=sorted(self.removals))
        by_gallery: dict[str, list[str]] = {}
        for face_id in self.upserts:
            by_gallery.setdefault(self.galleries.get(face_id, DEFAULT_GALLERY), []).append(face_id)
        for gallery, faces in by_gallery.items():
            batch.upserts[gallery] = GalleryUpserts(
                faces,
                [self.upserts[f][0] for f in faces],
                np.stack([self.upserts[f][1] for f in faces]),
            )
        return batch

    def apply(self, index: VectorIndex) -> None:
        """Apply to one index (a reader of one gallery)."""
        apply_to(index, self.folded(), only=None)

    def __len__(self) -> int:
        return len(self.upserts) + len(self.removals)


def apply_to(index: VectorIndex, batch: FoldedBatch, *, only: str | None) -> None:
    """Apply a batch to one index: every gallery's upserts (``only`` None) or one gallery's."""
    if batch.removals:
        index.remove(batch.removals)
    for gallery, upserts in batch.upserts.items():
        if (only is None or gallery == only) and len(upserts):
            index.add(upserts.faces, upserts.persons, upserts.vectors)


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
