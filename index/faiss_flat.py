"""``faiss-flat``: exact inner-product search, ``IndexIDMap2(IndexFlatIP)`` over int64 labels.

The default backend: exact, no training, and fast enough for galleries up to a few million
faces per replica (a query scans every vector). Removal is ``remove_ids``, which compacts the
flat storage (O(size) per call, so the base class removes in batches).
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from index.base import IndexCorrupt
from index.labelled import LabelledIndex
from index.registry import register

INDEX_FILE = "index.faiss"
# IndexIDMap2 keeps the labels in an int64 vector and a reverse hash map.
_ID_BYTES_PER_VECTOR = 8 + 40


@register("faiss-flat")
class FaissFlatIndex(LabelledIndex):
    def __init__(self, *, dim: int, model_id: str) -> None:
        super().__init__(dim=dim, model_id=model_id)
        self._faiss = self._empty()

    def _empty(self) -> faiss.IndexIDMap2:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    def _add_vectors(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        self._faiss.add_with_ids(vectors, labels)

    def _remove_vectors(self, labels: np.ndarray) -> None:
        self._faiss.remove_ids(labels)  # type: ignore[arg-type]  # faiss wraps arrays in a selector

    def _search_vectors(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, labels = self._faiss.search(queries, k)
        return scores, labels

    def _reset_vectors(self) -> None:
        self._faiss = self._empty()

    def _vector_count(self) -> int:
        return int(self._faiss.ntotal)

    def _stored_labels(self) -> np.ndarray:
        return faiss.vector_to_array(self._faiss.id_map)

    def _vector_bytes(self) -> int:
        return int(self._faiss.ntotal) * (self.dim * 4 + _ID_BYTES_PER_VECTOR)

    def _save_vectors(self, directory: Path) -> None:
        # Straight to the file: serialize_index builds the bytes in a growing vector, ~5x slower.
        faiss.write_index(self._faiss, str(directory / INDEX_FILE))

    def _load_vectors(self, directory: Path) -> None:
        loaded = faiss.read_index(str(directory / INDEX_FILE))
        if not isinstance(loaded, faiss.IndexIDMap2):
            raise IndexCorrupt(f"{directory / INDEX_FILE} is a {type(loaded).__name__}")
        if loaded.d != self.dim or loaded.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise IndexCorrupt(
                f"{directory / INDEX_FILE} has dimension {loaded.d} and metric"
                f" {loaded.metric_type}, expected {self.dim} and inner product"
            )
        self._faiss = loaded
