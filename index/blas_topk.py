"""Exact top-k inner products: the products through numpy's BLAS, the selection in FAISS's heap.

Why not ``faiss.IndexFlatIP.search``: the faiss-cpu wheel bundles its own OpenBLAS (0.3.15),
which does not recognise current CPUs and falls back to its generic (Prescott) kernels, while
numpy's newer OpenBLAS runs the AVX-512 ones (``threadpoolctl`` shows both). At 100k faces
FAISS answered 100 queries 6x slower than a numpy matmul, and its single-query path scans on
one core where the matmul uses every BLAS thread. Here the gallery is multiplied block by block
with ``numpy.matmul`` and each block's scores go into a ``faiss.float_minheap_array_t`` (C++,
no Python per score). Each heap update is kept below FAISS's OpenMP threshold
(``ni * nj <= 100_000``) and the heap is initialised and sorted in numpy: OpenMP workers
spinning after a parallel region would take the cores the BLAS threads need.
"""

from __future__ import annotations

import faiss
import numpy as np

# FAISS's HeapArray::addn parallelises (OpenMP) above this many scores per call.
_OMP_THRESHOLD = 100_000
# Gallery rows per matmul: large enough that BLAS runs at full speed (blocks of 1,000 rows were
# 4x slower than 16k at 100 queries), small enough to bound the block of scores.
_MIN_BLOCK = 4_096
_MAX_BLOCK = 65_536
_BLOCK_SCORES = 8 << 20  # float32 scores per block: 32 MiB


def block_rows(queries: int) -> int:
    """Gallery rows per block for ``queries`` query rows."""
    return max(1, min(_MAX_BLOCK, max(_MIN_BLOCK, _BLOCK_SCORES // max(1, queries))))


def top_k(queries: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores and row numbers ``(nq, k)`` of the ``k`` largest inner products, best first.

    ``queries`` ``(nq, d)`` and ``rows`` ``(n, d)`` are float32; ``1 <= k <= n``. Where ties
    leave fewer than ``k`` distinct rows (never, for ``k <= n``) the row number is -1.
    """
    nq, n = queries.shape[0], rows.shape[0]
    # An empty min-heap: every slot at -inf. Filled here rather than by heapify(), which (like
    # reorder()) always opens an OpenMP region.
    scores = np.full((nq, k), -np.inf, dtype=np.float32)
    found = np.full((nq, k), -1, dtype=np.int64)
    heaps = faiss.float_minheap_array_t()
    heaps.k, heaps.nh = k, nq
    heaps.val, heaps.ids = faiss.swig_ptr(scores), faiss.swig_ptr(found)
    step = block_rows(nq)
    block = np.empty((nq, min(step, n)), dtype=np.float32)
    for first in range(0, n, step):
        part = rows[first : first + step]
        out = block[:, : part.shape[0]] if part.shape[0] < block.shape[1] else block
        np.matmul(queries, part.T, out=out)
        if not out.flags.c_contiguous:
            out = np.ascontiguousarray(out)
        width = out.shape[1]
        group = max(1, _OMP_THRESHOLD // width)  # query rows per heap update: below the threshold
        for row in range(0, nq, group):
            count = min(group, nq - row)
            heaps.addn(width, faiss.swig_ptr(out[row:]), first, row, count)  # type: ignore[call-arg]
    order = np.argsort(-scores, axis=1, kind="stable")
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(found, order, axis=1)
