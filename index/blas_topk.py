"""Exact top-k inner products: the products through numpy's BLAS, the selection in FAISS's heap.

Why not ``faiss.IndexFlatIP.search``: the faiss-cpu wheel bundles its own OpenBLAS (0.3.15),
which does not recognise current CPUs and falls back to its generic (Prescott) kernels, while
numpy's newer OpenBLAS runs the AVX-512 ones (``threadpoolctl`` shows both). At 100k faces
FAISS answered 100 queries 6x slower than a numpy matmul, and its single-query path scans on
one core where the matmul uses every BLAS thread. Here the gallery is multiplied block by block
with ``numpy.matmul`` and each block's scores go into a ``faiss.float_minheap_array_t`` (C++,
no Python per score). Each heap update is kept below FAISS's OpenMP threshold
(``ni * nj <= 100_000``: one query row, at most 100k scores) and the heap is initialised and
sorted in numpy: OpenMP workers spinning after a parallel region would take the cores the BLAS
threads need.
"""

from __future__ import annotations

import faiss
import numpy as np

# FAISS's HeapArray::addn parallelises (OpenMP) above this many scores per call.
_OMP_THRESHOLD = 100_000
# Scores per matmul block (float32: 32 MiB). One query scans up to 8M rows in one BLAS call;
# 100 queries take 84k-row blocks (1,000-row blocks ran 4x slower at 100 queries).
_BLOCK_SCORES = 8 << 20
_MIN_BLOCK = 4_096
# Up to this many rows a lone query selects its top k with numpy (``_one_small``); beyond, the
# heap is faster (3x at 100k faces, measured here).
_SMALL_SCAN = 32_768


def _one_small(query: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """One query over a small gallery: the heap's setup (SWIG objects, its arrays, its sort) was
    a twentieth of such a search, and numpy selects as fast at this size."""
    scores = np.matmul(query, rows.T)[0]
    n = len(scores)
    top = np.argpartition(scores, n - k)[n - k :] if k < n else np.arange(n)
    least = scores[top].min()
    if np.count_nonzero(scores >= least) > k:  # ties across the cut: the lower rows, always
        above = np.flatnonzero(scores > least)
        top = np.concatenate([above, np.flatnonzero(scores == least)[: k - len(above)]])
    order = top[np.lexsort((top, -scores[top]))]  # best first; among equals, the lower row first
    return scores[order][None, :], order[None, :]


def block_rows(queries: int) -> int:
    """Gallery rows per matmul block for ``queries`` query rows."""
    return max(_MIN_BLOCK, _BLOCK_SCORES // max(1, queries))


def top_k(queries: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores and row numbers ``(nq, k)`` of the ``k`` largest inner products, best first.

    ``queries`` ``(nq, d)`` and ``rows`` ``(n, d)`` are float32; ``1 <= k <= n``.
    """
    nq, n = queries.shape[0], rows.shape[0]
    if nq == 1 and n <= _SMALL_SCAN:
        return _one_small(queries, rows, k)
    # An empty min-heap: every slot at -inf. Filled here rather than by heapify(), which (like
    # reorder()) always opens an OpenMP region.
    scores = np.full((nq, k), -np.inf, dtype=np.float32)
    found = np.full((nq, k), -1, dtype=np.int64)
    heaps = faiss.float_minheap_array_t()
    heaps.k, heaps.nh = k, nq
    heaps.val, heaps.ids = faiss.swig_ptr(scores), faiss.swig_ptr(found)
    step = min(n, block_rows(nq))
    block = np.empty((nq, step), dtype=np.float32)
    for first in range(0, n, step):
        part = rows[first : first + step]
        width = part.shape[0]
        out = block if width == step else np.empty((nq, width), dtype=np.float32)
        np.matmul(queries, part.T, out=out)
        # One query row at a time, in runs of columns below the OpenMP threshold: a row's
        # run is contiguous, and no OpenMP region opens.
        for row in range(nq):
            for col in range(0, width, _OMP_THRESHOLD):
                run = out[row, col : col + _OMP_THRESHOLD]
                heaps.addn(len(run), faiss.swig_ptr(run), first + col, row, 1)  # type: ignore[call-arg]
    order = np.argsort(-scores, axis=1, kind="stable")
    picked = (np.arange(nq)[:, None], order)
    return scores[picked], found[picked]
