"""Exact top-k inner products: the products through numpy's BLAS, the selection in C.

Why not ``faiss.IndexFlatIP.search``: the faiss-cpu wheel bundles its own OpenBLAS (0.3.15),
which does not recognise current CPUs and falls back to its generic (Prescott) kernels, while
numpy's newer OpenBLAS runs the AVX-512 ones (``threadpoolctl`` shows both). At 100k faces
FAISS answered 100 queries 6x slower than a numpy matmul, and its single-query path scans on
one core where the matmul uses every BLAS thread. Here the gallery is multiplied block by block
with ``numpy.matmul`` and each block's scores are offered to one bounded heap per query in C
(``index/_topk_heap.c``): one call per block, no Python per score or per query. FAISS's own
heap cost ~20 us of setup per search (SWIG objects, its sort), a twentieth of a search at 10k
faces, and kept ties in no set order; here equal scores at the cut always keep the lower rows.
"""

from __future__ import annotations

import numpy as np

from index._topk_heap import push_block, sort_heaps

# Scores per matmul block (float32: 32 MiB). One query scans up to 8M rows in one BLAS call;
# 100 queries take 84k-row blocks (1,000-row blocks ran 4x slower at 100 queries).
_BLOCK_SCORES = 8 << 20
_MIN_BLOCK = 4_096


def block_rows(queries: int) -> int:
    """Gallery rows per matmul block for ``queries`` query rows."""
    return max(_MIN_BLOCK, _BLOCK_SCORES // max(1, queries))


def top_k(queries: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores and row numbers ``(nq, k)`` of the ``k`` largest inner products, best first.

    ``queries`` ``(nq, d)`` and ``rows`` ``(n, d)`` are float32; ``1 <= k <= n``.
    """
    nq, n = queries.shape[0], rows.shape[0]
    # Empty heaps: every slot at -inf, which any score displaces.
    scores = np.full((nq, k), -np.inf, dtype=np.float32)
    found = np.full((nq, k), -1, dtype=np.int64)
    step = min(n, block_rows(nq))
    block = np.empty((nq, step), dtype=np.float32)
    for first in range(0, n, step):
        part = rows[first : first + step]
        out = block if part.shape[0] == step else np.empty((nq, part.shape[0]), dtype=np.float32)
        np.matmul(queries, part.T, out=out)
        push_block(out, nq, first, scores, found)
    sort_heaps(nq, scores, found)
    return scores, found
