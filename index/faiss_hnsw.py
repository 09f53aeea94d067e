"""``faiss-hnsw``: FAISS ``IndexHNSWFlat`` (inner product), graph search over exact vectors.

The graph stores the float vectors themselves, so every similarity it answers is the true
cosine; only recall is approximate (``efSearch`` trades it against latency). No training.

Removal: an HNSW graph cannot drop a node (``remove_ids`` is not implemented), so a removed
or replaced face becomes a *tombstone*: its slot stays in the graph, searches filter it out
(an ``IDSelector`` passed to the search), and once tombstones exceed ``compact_ratio`` of
the slots the graph is rebuilt from the live vectors (O(n log n), the same cost as adding
them all again). Heavy churn (erasures, re-enrolment) therefore costs periodic rebuilds.

Options: ``M=32`` links per node, ``efConstruction=100``, ``efSearch=128`` (raised to ``k``
when a search asks for more), ``compact_ratio=0.25``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import faiss
import numpy as np

from index.base import IndexCorrupt, invalid
from index.labelled import LabelledIndex
from index.registry import register

INDEX_FILE = "hnsw.faiss"
SLOTS_FILE = "slots.npy"


@register("faiss-hnsw")
class FaissHnswIndex(LabelledIndex):
    exact: ClassVar[bool] = False
    _selector: Any  # a faiss IDSelectorNot over the tombstones, or None

    def __init__(
        self,
        *,
        dim: int,
        model_id: str,
        M: int = 32,
        efConstruction: int = 100,
        efSearch: int = 128,
        compact_ratio: float = 0.25,
    ) -> None:
        super().__init__(dim=dim, model_id=model_id)
        for name, value in (("M", M), ("efConstruction", efConstruction), ("efSearch", efSearch)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise invalid(f"{name} must be a positive integer, got {value!r}")
        if not 0 < compact_ratio < 1:
            raise invalid(f"compact_ratio must be in (0, 1), got {compact_ratio!r}")
        self._M, self._ef_construction, self._ef_search = M, efConstruction, efSearch
        self._compact_ratio = float(compact_ratio)
        self._reset_vectors()

    def _empty(self) -> faiss.IndexHNSWFlat:
        graph = faiss.IndexHNSWFlat(self.dim, self._M, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = self._ef_construction
        return graph

    @property
    def tombstones(self) -> int:
        return int(self._graph.ntotal) - self._live

    # --- LabelledIndex hooks

    def _add_vectors(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        start = int(self._graph.ntotal)
        self._graph.add(vectors)
        self._grow_slots(start + len(labels))
        self._slot_label[start : start + len(labels)] = labels
        self._slot_of.update(zip(labels.tolist(), range(start, start + len(labels)), strict=True))
        self._live += len(labels)

    def _remove_vectors(self, labels: np.ndarray) -> None:
        slots = [self._slot_of.pop(label) for label in labels.tolist()]
        self._slot_label[slots] = -1
        self._live -= len(slots)
        self._selector = None
        if self.tombstones > self._compact_ratio * int(self._graph.ntotal):
            self._compact()

    def _search_vectors(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        params = faiss.SearchParametersHNSW(efSearch=max(self._ef_search, k))  # type: ignore[attr-defined]
        if self.tombstones:
            if self._selector is None:
                dead = np.flatnonzero(self._slot_label[: int(self._graph.ntotal)] < 0).astype(np.int64)
                batch = faiss.IDSelectorBatch(dead)
                self._selector = faiss.IDSelectorNot(batch)
                self._selector_keepalive = (batch, dead)
            params.sel = self._selector
        scores, slots = self._graph.search(queries, k, params=params)
        labels = np.where(slots >= 0, self._slot_label[np.maximum(slots, 0)], -1)
        return scores, labels

    def _reset_vectors(self) -> None:
        self._graph = self._empty()
        self._slot_label = np.empty(0, dtype=np.int64)
        self._slot_of: dict[int, int] = {}
        self._live = 0
        self._selector = None

    def _vector_count(self) -> int:
        return self._live

    def _stored_labels(self) -> np.ndarray:
        labels = self._slot_label[: int(self._graph.ntotal)]
        return labels[labels >= 0]

    def _vector_bytes(self) -> int:
        slots = int(self._graph.ntotal)
        # flat vectors + level-0 links (2M ints) + upper levels (~M/ (M-1)) + slot maps
        return slots * (self.dim * 4 + 2 * self._M * 4 + 8 + 12) + 100 * self._live

    def _options(self) -> dict[str, Any]:
        return {
            "M": self._M,
            "efConstruction": self._ef_construction,
            "efSearch": self._ef_search,
            "compact_ratio": self._compact_ratio,
        }

    def _save_vectors(self, directory: Path) -> None:
        faiss.write_index(self._graph, str(directory / INDEX_FILE))
        np.save(directory / SLOTS_FILE, self._slot_label[: int(self._graph.ntotal)], allow_pickle=False)

    def _load_vectors(self, directory: Path) -> None:
        graph = faiss.read_index(str(directory / INDEX_FILE))
        slots = np.load(directory / SLOTS_FILE, allow_pickle=False)
        if not isinstance(graph, faiss.IndexHNSWFlat) or graph.d != self.dim:
            raise IndexCorrupt(f"{directory / INDEX_FILE} is a {type(graph).__name__} of dim {graph.d}")
        if graph.metric_type != faiss.METRIC_INNER_PRODUCT or slots.shape != (graph.ntotal,):
            raise IndexCorrupt(
                f"{directory}: metric {graph.metric_type}, {slots.shape} slots for {graph.ntotal}"
            )
        self._reset_vectors()
        self._graph = graph
        self._slot_label = slots.astype(np.int64)
        self._slot_of = {int(label): slot for slot, label in enumerate(slots.tolist()) if label >= 0}
        self._live = len(self._slot_of)

    # --- tombstones

    def _grow_slots(self, need: int) -> None:
        if need > len(self._slot_label):
            grown = np.full(max(need, 2 * len(self._slot_label), 1024), -1, dtype=np.int64)
            grown[: len(self._slot_label)] = self._slot_label
            self._slot_label = grown

    def _compact(self) -> None:
        """Rebuild the graph from the live vectors, dropping every tombstone."""
        total = int(self._graph.ntotal)
        slots = np.flatnonzero(self._slot_label[:total] >= 0)
        labels = self._slot_label[slots].copy()
        vectors = self._graph.reconstruct_n(0, total)[slots] if total else np.empty((0, self.dim), np.float32)
        self._reset_vectors()
        if len(labels):
            self._add_vectors(labels, np.ascontiguousarray(vectors, dtype=np.float32))
