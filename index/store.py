"""Helpers the approximate and embedded backends share.

``VectorStore``: the exact float32 rows under their int64 labels, in one contiguous array, so
that an approximate backend can re-score its shortlist by true cosine (IVF-PQ), rebuild a
static index (ScaNN, HNSW compaction) or export its content (Qdrant, Milvus) without asking
the engine for vectors back. ``exact_top_k`` is brute force over such rows; ``require``
imports an optional library or says which package to install.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import numpy as np

from core.errors import ErrorCode, FacestreamError

VECTORS_FILE = "vectors.npy"
LABELS_FILE = "labels.npy"
# Bytes of query x candidate x dim float32 gathered at once while re-ranking.
_GATHER_BYTES = 32 << 20


def require(module: str, package: str, backend: str) -> ModuleType:
    """Import ``module`` or raise a FacestreamError that names the package to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise FacestreamError(
            ErrorCode.UNAVAILABLE,
            f"index backend {backend!r} needs the {package!r} package, which is not installed"
            f" here ({exc}); install it with `pip install {package}`",
        ) from exc


class VectorStore:
    """Unit float32 rows under int64 labels; removal moves the last row into the hole."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.clear()

    def clear(self) -> None:
        self._rows = np.empty((0, self.dim), dtype=np.float32)
        self._labels = np.empty(0, dtype=np.int64)
        self._count = 0
        self._row_of: dict[int, int] = {}

    def __len__(self) -> int:
        return self._count

    @property
    def vectors(self) -> np.ndarray:
        return self._rows[: self._count]

    @property
    def labels(self) -> np.ndarray:
        return self._labels[: self._count]

    @property
    def nbytes(self) -> int:
        return self._count * (self.dim * 4 + 8 + 100)  # rows, labels, the label -> row dict

    def add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        need = self._count + len(labels)
        if need > len(self._rows):
            capacity = max(need, 2 * len(self._rows), 1024)
            rows = np.empty((capacity, self.dim), dtype=np.float32)
            rows[: self._count] = self.vectors
            ids = np.empty(capacity, dtype=np.int64)
            ids[: self._count] = self.labels
            self._rows, self._labels = rows, ids
        self._rows[self._count : need] = vectors
        self._labels[self._count : need] = labels
        self._row_of.update(zip(labels.tolist(), range(self._count, need), strict=True))
        self._count = need

    def remove(self, labels: np.ndarray) -> None:
        for label in labels.tolist():
            row = self._row_of.pop(label)
            last = self._count - 1
            if row != last:
                moved = int(self._labels[last])
                self._rows[row] = self._rows[last]
                self._labels[row] = moved
                self._row_of[moved] = row
            self._count = last

    def get(self, labels: np.ndarray) -> np.ndarray:
        return self._rows[[self._row_of[label] for label in labels.tolist()]]

    def rerank(self, queries: np.ndarray, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """True inner products of each query with its candidate labels (-1: none); top ``k``."""
        n, width = candidates.shape
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        labels = np.full((n, k), -1, dtype=np.int64)
        lookup = self._row_of.get
        rows = np.fromiter(
            (lookup(label, -1) for label in candidates.ravel().tolist()), dtype=np.int64, count=n * width
        ).reshape(n, width)
        chunk = max(1, _GATHER_BYTES // max(1, width * self.dim * 4))
        for start in range(0, n, chunk):
            part = rows[start : start + chunk]
            valid = part >= 0
            gathered = self._rows[np.where(valid, part, 0)]
            sims = np.einsum("qcd,qd->qc", gathered, queries[start : start + chunk])
            sims[~valid] = -np.inf
            top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
            scores[start : start + chunk] = np.take_along_axis(sims, top, axis=1)
            chosen = np.take_along_axis(part, top, axis=1)
            found = np.take_along_axis(valid, top, axis=1)
            labels[start : start + chunk] = np.where(found, self._labels[np.where(found, chosen, 0)], -1)
        return scores, labels

    def save(self, directory: Path) -> None:
        np.save(directory / VECTORS_FILE, self.vectors, allow_pickle=False)
        np.save(directory / LABELS_FILE, self.labels, allow_pickle=False)

    def load(self, directory: Path) -> None:
        vectors = np.load(directory / VECTORS_FILE, allow_pickle=False)
        labels = np.load(directory / LABELS_FILE, allow_pickle=False)
        if vectors.dtype != np.float32 or vectors.shape != (len(labels), self.dim):
            raise ValueError(f"stored vectors have shape {vectors.shape} for {len(labels)} labels")
        self.clear()
        self.add(labels.astype(np.int64), vectors)


def exact_top_k(queries: np.ndarray, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force inner products: (scores, row numbers) ``(n, k)``, best first."""
    sims = queries @ vectors.T
    if k < sims.shape[1]:
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(sims.shape[1]), sims.shape)
    part_sims = np.take_along_axis(sims, part, axis=1)
    order = np.argsort(-part_sims, axis=1, kind="stable")
    return np.take_along_axis(part_sims, order, axis=1), np.take_along_axis(part, order, axis=1)
