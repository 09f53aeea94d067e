"""The one interface every vector-index backend implements, and the values it answers with.

Vectors: every method that takes vectors accepts any real array of shape ``(n, dim)`` and
*normalises each row to unit L2 norm* (float32) before use, so similarities are cosine
similarities whatever the caller passed. Embeddings on the log are already unit-norm, for
which this is a no-op up to float rounding. Rows that cannot be normalised (zero norm, NaN,
inf) are refused with ``INVALID_PARAMETER``; a wrong last dimension, or a ``model_id`` other
than the index's, is ``MODEL_MISMATCH``: vectors of different models never share an index.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Self, runtime_checkable

import numpy as np

from core.errors import ErrorCode, FacestreamError


@dataclass(frozen=True, slots=True)
class Hit:
    """One indexed face near a query; ``similarity`` is cosine, in [-1, 1]."""

    face_id: str
    person_id: str
    similarity: float


@dataclass(frozen=True, slots=True)
class PersonMatch:
    """A candidate person: the best similarity over that person's faces, and which face gave it."""

    person_id: str
    similarity: float
    face_id: str


@dataclass(frozen=True, slots=True)
class IndexStats:
    backend: str
    size: int
    dim: int
    model_id: str
    persons: int
    memory_bytes: int


class IndexCorrupt(FacestreamError):
    """Saved index files that cannot be loaded back (truncated, garbled, inconsistent)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INTERNAL, message)


class Saveable(Protocol):
    """What ``write_snapshot`` needs: an index, or a frozen view of one (``LabelledIndex.frozen``)."""

    @property
    def backend(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def model_id(self) -> str: ...

    def save(self, path: Path) -> None: ...

    def stats(self) -> IndexStats: ...


@runtime_checkable
class VectorIndex(Protocol):
    """Faces (face id -> person id, unit vector) searchable by cosine similarity.

    Not thread-safe: one replica loop owns an index and applies the log to it in order.
    """

    @property
    def backend(self) -> str:
        """The registry name of the implementation (``faiss-flat``, ...)."""
        ...

    @property
    def dim(self) -> int: ...

    @property
    def model_id(self) -> str: ...

    def add(
        self,
        face_ids: Sequence[str],
        person_ids: Sequence[str],
        vectors: np.ndarray,
        *,
        model_id: str | None = None,
    ) -> None:
        """Upsert: a face id already present is replaced (vector and person), never duplicated."""
        ...

    def remove(self, face_ids: Iterable[str]) -> int:
        """Remove faces; returns how many were present. Unknown ids are ignored."""
        ...

    def remove_person(self, person_id: str) -> int:
        """Erase every face of a person; returns how many were removed."""
        ...

    def search(self, queries: np.ndarray, k: int, *, model_id: str | None = None) -> list[list[Hit]]:
        """Top-``k`` faces per query row, best first; fewer when the index holds fewer."""
        ...

    def rebuild(
        self,
        face_ids: Sequence[str],
        person_ids: Sequence[str],
        vectors: np.ndarray,
        *,
        model_id: str | None = None,
    ) -> None:
        """Replace the whole content; invalid input leaves the old content untouched."""
        ...

    def save(self, path: Path) -> None:
        """Write the index into directory ``path`` (created if missing)."""
        ...

    @classmethod
    def load(cls, path: Path) -> Self:
        """Read back what ``save`` wrote; raises ``IndexCorrupt`` when it cannot."""
        ...

    def stats(self) -> IndexStats: ...

    def __len__(self) -> int: ...

    def __contains__(self, face_id: object) -> bool: ...


def invalid(message: str) -> FacestreamError:
    return FacestreamError(ErrorCode.INVALID_PARAMETER, message)


def check_model(index_model_id: str, model_id: str | None) -> None:
    if model_id is not None and model_id != index_model_id:
        raise FacestreamError(
            ErrorCode.MODEL_MISMATCH,
            f"embeddings of model {model_id!r} cannot be used with an index of {index_model_id!r}",
        )


def unit_rows(vectors: np.ndarray, dim: int) -> np.ndarray:
    """Validate an ``(n, dim)`` array and return it as C-contiguous float32 unit rows."""
    array = np.asarray(vectors)
    if array.ndim != 2:
        raise invalid(f"vectors must have shape (n, {dim}), got {array.shape}")
    if array.shape[1] != dim:
        raise FacestreamError(
            ErrorCode.MODEL_MISMATCH,
            f"vectors have dimension {array.shape[1]}, the index holds dimension {dim}",
        )
    if array.dtype != np.float32 and (not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array)):
        raise invalid(f"vectors must be real numbers, got dtype {array.dtype}")
    rows = np.ascontiguousarray(array, dtype=np.float32)
    if rows.shape[0] == 0:
        return rows
    # One pass for the common case, rows already unit (every embedding on the log): their
    # squared norms are finite, so are their values, and they are returned as they are. A
    # single query (an identify) takes one dot product instead of three array passes.
    if rows.shape[0] == 1:
        if abs(float(np.dot(rows[0], rows[0])) - 1.0) <= _UNIT_TOLERANCE:  # False for NaN and inf
            return rows
    else:
        squared = np.einsum("ij,ij->i", rows, rows)
        if np.isfinite(squared).all() and (np.abs(squared - 1.0) <= _UNIT_TOLERANCE).all():
            return rows
    if not np.isfinite(rows).all():
        raise invalid("vectors contain NaN or infinite values")
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    if (norms <= np.finfo(np.float32).tiny).any():
        raise invalid("vectors contain an all-zero row, which has no direction")
    return np.ascontiguousarray(rows / norms, dtype=np.float32)


# Squared norms this close to 1 are unit already (float32 rounding of a normalised vector).
_UNIT_TOLERANCE = 1e-5


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise invalid(f"k must be a positive integer, got {k!r}")
    return int(k)


def rank_persons(hits: Iterable[Hit], k: int) -> list[PersonMatch]:
    """Per-person candidates from face hits: best similarity per person, best first, top ``k``.

    Ties are broken by person id so that every replica answers the same.
    """
    k = check_k(k)
    best: dict[str, Hit] = {}
    for hit in hits:
        current = best.get(hit.person_id)
        if current is None or hit.similarity > current.similarity:
            best[hit.person_id] = hit
    ranked = sorted(best.values(), key=lambda h: (-h.similarity, h.person_id))
    return [PersonMatch(h.person_id, h.similarity, h.face_id) for h in ranked[:k]]


def search_persons(
    index: VectorIndex, queries: np.ndarray, k: int, *, model_id: str | None = None
) -> list[list[PersonMatch]]:
    """Exact top-``k`` persons per query, however many faces each person has enrolled.

    Searches ``4k`` faces first and widens (doubling) only for queries whose face hits name
    fewer than ``k`` persons while the index holds more faces. Once ``k`` distinct persons
    are among the top ``m`` faces, no person outside them can rank higher.
    """
    k = check_k(k)
    size = len(index)
    depth = min(4 * k, max(size, 1))
    results = index.search(queries, depth, model_id=model_id)
    answers = [rank_persons(hits, k) for hits in results]
    pending = [i for i, ranked in enumerate(answers) if len(ranked) < k]
    rows = unit_rows(queries, index.dim) if pending else None
    while pending and depth < size and rows is not None:
        depth = min(depth * 2, size)
        wider = index.search(rows[pending], depth, model_id=model_id)
        for i, hits in zip(pending, wider, strict=True):
            answers[i] = rank_persons(hits, k)
        pending = [i for i in pending if len(answers[i]) < k]
    return answers
