"""``scann``: Google ScaNN through ``scann.scann_ops_pybind`` (no TensorFlow needed).

A ScaNN searcher is static: built once over a dataset, it cannot add or remove rows. So the
backend keeps the exact rows in a side store (``index.store.VectorStore``), marks itself
dirty on every add or remove, and rebuilds the searcher lazily on the next search. That
suits a replica that applies a log tail then mostly serves; a write-heavy replica pays a
rebuild per search after each write (batch the writes, or pick another backend).

Searcher: below ``tree_min`` faces, brute force (exact). From ``tree_min`` on: a partition
tree of ~sqrt(n) leaves (``leaves_to_search`` a tenth of them, at least 32), asymmetric
hashing scoring, and exact re-ordering of the top ``k * reorder_factor`` (at least 100),
so the similarities answered are true cosines (re-computed by ``VectorStore.rerank``).
``save`` writes the exact rows; ``load`` reads them and the searcher is rebuilt on first use.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from index.base import invalid
from index.labelled import LabelledIndex
from index.registry import register
from index.store import VectorStore, require


@register("scann")
class ScannIndex(LabelledIndex):
    exact: ClassVar[bool] = False

    def __init__(self, *, dim: int, model_id: str, tree_min: int = 20_000, reorder_factor: int = 10) -> None:
        super().__init__(dim=dim, model_id=model_id)
        for name, value in (("tree_min", tree_min), ("reorder_factor", reorder_factor)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise invalid(f"{name} must be a positive integer, got {value!r}")
        self._ops = require("scann", "scann", "scann").scann_ops_pybind
        self._tree_min, self._reorder_factor = tree_min, reorder_factor
        self._store = VectorStore(dim)
        self._searcher: Any = None
        self._searcher_labels = np.empty(0, dtype=np.int64)

    def _build(self, k: int) -> None:
        vectors = np.ascontiguousarray(self._store.vectors)
        n = len(vectors)
        builder = self._ops.builder(vectors, k, "dot_product")
        if n < self._tree_min:
            builder = builder.score_brute_force()
        else:
            leaves = max(2, int(math.sqrt(n)))
            builder = (
                builder.tree(
                    num_leaves=leaves, num_leaves_to_search=max(32, leaves // 10), training_sample_size=n
                )
                .score_ah(2, anisotropic_quantization_threshold=0.2)
                .reorder(max(100, k * self._reorder_factor))
            )
        self._searcher = builder.build()
        self._searcher_labels = self._store.labels.copy()

    # --- LabelledIndex hooks

    def _add_vectors(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        self._store.add(labels, vectors)
        self._searcher = None

    def _remove_vectors(self, labels: np.ndarray) -> None:
        self._store.remove(labels)
        self._searcher = None

    def _search_vectors(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._searcher is None:
            self._build(k)
        if len(self._searcher_labels) < self._tree_min:
            rows, _ = self._searcher.search_batched(queries, final_num_neighbors=k)
        else:
            rows, _ = self._searcher.search_batched(
                queries,
                final_num_neighbors=k,
                pre_reorder_num_neighbors=max(100, k * self._reorder_factor),
                leaves_to_search=max(32, int(math.sqrt(len(self._searcher_labels))) // 10),
            )
        rows = rows.astype(np.int64)
        labels = np.where(rows >= 0, self._searcher_labels[np.clip(rows, 0, None)], -1)
        # ScaNN's own scores round differently from build to build (SIMD paths); the same
        # numpy re-scoring as IVF-PQ makes two replicas of one snapshot answer identically.
        return self._store.rerank(queries, labels, k)

    def _reset_vectors(self) -> None:
        self._store.clear()
        self._searcher = None

    def _vector_count(self) -> int:
        return len(self._store)

    def _stored_labels(self) -> np.ndarray:
        return self._store.labels

    def _vector_bytes(self) -> int:
        return 2 * self._store.nbytes  # the side store and ScaNN's own copy of the dataset

    def _options(self) -> dict[str, Any]:
        return {"tree_min": self._tree_min, "reorder_factor": self._reorder_factor}

    def _save_vectors(self, directory: Path) -> None:
        self._store.save(directory)

    def _load_vectors(self, directory: Path) -> None:
        self._store.load(directory)
        self._searcher = None
