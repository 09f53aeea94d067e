"""``faiss-flat``: exact inner-product search over one contiguous float32 matrix.

The default backend: exact, no training, fast enough for galleries up to a few million faces
per replica (a query scans every vector). It answers what ``faiss.IndexFlatIP`` answers, with
numpy's BLAS for the products and a top-k heap in C, without FAISS (``index.blas_topk`` says
why; the name stays, it is what deployments configure). Rows live in a growable array with
their int64 labels beside them; removal moves the last row into the hole (O(1) per face, no
compaction). Rows once written can be moved into huge pages in the background (``settle``).

Snapshots: ``save`` writes ``vectors.npy`` and ``labels.npy``; ``load`` memory-maps the vectors
(read-only, shared with the page cache) and copies them only when the index is first changed.
``frozen`` hands out the rows as they are, copy-on-write: the next change that would overwrite
a row the frozen view still shows copies the array first, so a snapshot is written from a
consistent state while the index goes on applying the log.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from index import memory
from index.blas_topk import top_k
from index.labelled import FrozenVectors, LabelledIndex
from index.pacing import throttle
from index.registry import register

VECTORS_FILE = "vectors.npy"
LABELS_FILE = "labels.npy"
_MIN_CAPACITY = 1024
_WRITE_CHUNK = 16 << 20
# Rows past this size stay in small pages. At 1M faces (2 GB) the scan was ahead of numpy's
# huge-page array without settling (0.96-0.98x), while settling took 20-27 s beside a
# replica's searches and held one of them 730 ms (bench/replica.py, 194 ms at most in a run
# without settling; the collapse copying under the process's memory-map lock is my reading of
# the kernel, not measured). At 100k (200 MB) it took 0.07-0.13 s in the bench runs and turned
# 1.02-1.17x numpy into 0.94-0.95x.
_SETTLE_MAX_BYTES = 512 << 20


@register("faiss-flat")
class FaissFlatIndex(LabelledIndex):
    _rows: np.ndarray  # (capacity, dim) float32; a read-only memory map after load
    _labels: np.ndarray  # (capacity,) int64
    _count: int
    _owned: bool  # False: a frozen view or the file shares _rows; copy before overwriting
    _rows_by_label: dict[int, int] | None  # None: not built until a removal needs it, see _row_of
    _settled: int  # bytes of _rows already in huge pages (``settle``)

    def __init__(self, *, dim: int, model_id: str) -> None:
        super().__init__(dim=dim, model_id=model_id)
        self._reset_vectors()

    # --- storage

    def _writable(self, need: int) -> None:
        """Make rows ``[0, need)`` writable: own the array, with room for ``need`` rows."""
        if self._owned and need <= len(self._rows):
            return
        capacity = len(self._rows) if need <= len(self._rows) else max(need, len(self._rows) * 3 // 2)
        capacity = max(capacity, _MIN_CAPACITY)
        rows = memory.empty((capacity, self.dim), np.float32)
        rows[: self._count] = self._rows[: self._count]
        labels = np.empty(capacity, dtype=np.int64)
        labels[: self._count] = self._labels[: self._count]
        self._rows, self._labels, self._owned, self._settled = rows, labels, True, 0

    def _prepare_vectors(self, adding: int, overwriting: bool) -> None:
        if overwriting:
            self._rows_by_label = self._row_of  # built here, outside the caller's lock
        need = self._count + adding
        if need > len(self._rows) or (overwriting and not self._owned) or not self._owned_tail():
            # Headroom, so that the appends after a load or a copy do not copy again.
            self._writable(need + max(_MIN_CAPACITY, need // 8))

    def _add_vectors(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        need = self._count + len(labels)
        # Appending writes past every row a frozen view shows: no copy needed for it.
        if need > len(self._rows) or not self._owned_tail():
            self._writable(need)
        self._rows[self._count : need] = vectors
        self._labels[self._count : need] = labels
        if self._rows_by_label is not None:  # else built from the labels when a removal needs it
            self._rows_by_label.update(zip(labels.tolist(), range(self._count, need), strict=True))
        self._count = need

    def _owned_tail(self) -> bool:
        """Whether rows past ``_count`` may be written (not a memory map, not read-only)."""
        return bool(self._rows.flags.writeable) and not isinstance(self._rows, np.memmap)

    def _remove_vectors(self, labels: np.ndarray) -> None:
        self._writable(self._count)
        for label in labels.tolist():
            row = self._row_of.pop(label)
            last = self._count - 1
            if row != last:
                moved = int(self._labels[last])
                self._rows[row] = self._rows[last]
                self._labels[row] = moved
                self._row_of[moved] = row
            self._count = last

    def _search_vectors(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, rows = top_k(queries, self._rows[: self._count], k)  # k <= _count: every slot filled
        return scores, self._labels[rows]

    def _reset_vectors(self) -> None:
        self._rows = np.empty((0, self.dim), dtype=np.float32)
        self._labels = np.empty(0, dtype=np.int64)
        self._count = 0
        self._owned = True
        self._rows_by_label = None
        self._settled = 0

    def settle(self) -> int:
        rows = self._rows
        upto = self._count * rows.itemsize * self.dim
        if upto > _SETTLE_MAX_BYTES:
            return self._settled
        settled = memory.settle(rows, upto, since=self._settled)
        # A change on another thread may have replaced the array meanwhile (growth, copy on
        # write): what was settled then belongs to the old one, and the new one starts at 0.
        if rows is self._rows:
            self._settled = settled
        return settled

    @property
    def _row_of(self) -> dict[int, int]:
        rows = self._rows_by_label
        if rows is None:
            rows = dict(zip(self._labels[: self._count].tolist(), range(self._count), strict=True))
            self._rows_by_label = rows
        return rows

    def _vector_count(self) -> int:
        return self._count

    def _stored_labels(self) -> np.ndarray:
        return self._labels[: self._count]

    def _vector_bytes(self) -> int:
        # rows and labels, plus the label -> row dict
        return self._count * (self.dim * 4 + 8 + 100)

    # --- snapshots

    def _freeze_vectors(self) -> FrozenVectors:
        rows, labels = self._rows[: self._count], self._labels[: self._count]
        self._owned = False  # the next change that overwrites a row copies the array first
        return _FrozenRows(rows, labels)

    def _save_vectors(self, directory: Path) -> None:
        _FrozenRows(self._rows[: self._count], self._labels[: self._count]).save(directory)

    def _load_vectors(self, directory: Path) -> None:
        vectors = np.load(directory / VECTORS_FILE, mmap_mode="r", allow_pickle=False)
        labels = np.load(directory / LABELS_FILE, allow_pickle=False)
        if vectors.dtype != np.float32 or vectors.shape != (len(labels), self.dim):
            raise ValueError(f"stored vectors have shape {vectors.shape} for {len(labels)} labels")
        if labels.dtype != np.int64:
            raise ValueError(f"stored labels have dtype {labels.dtype}")
        self._rows, self._labels, self._count, self._owned = vectors, labels, len(labels), False
        self._rows_by_label = None  # built when a change first needs it
        self._settled = 0  # a file's pages: never settled, the first change copies them


class _FrozenRows:
    """Rows and labels as they were when frozen; the index copies before overwriting them."""

    def __init__(self, rows: np.ndarray, labels: np.ndarray) -> None:
        self._rows, self._labels = rows, labels

    def save(self, directory: Path) -> None:
        _save_paced(directory / VECTORS_FILE, self._rows)
        np.save(directory / LABELS_FILE, self._labels, allow_pickle=False)


def _save_paced(path: Path, array: np.ndarray) -> None:
    """``np.save``, written in chunks with ``index.pacing.throttle`` between them."""
    rows = np.ascontiguousarray(array)
    step = max(1, _WRITE_CHUNK // max(1, rows[:1].nbytes))
    with path.open("wb") as file:
        np.lib.format.write_array_header_1_0(file, np.lib.format.header_data_from_array_1_0(rows))
        for first in range(0, len(rows), step):
            part = rows[first : first + step]
            file.write(part.data.cast("B"))  # the rows themselves, no copy
            throttle(part.nbytes)
