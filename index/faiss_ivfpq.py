"""``faiss-ivfpq``: FAISS ``IndexIVFPQ`` shortlist, re-ranked by true cosine.

IVF-PQ compares a query with product-quantised codes, so its scores are estimates (off by
a few hundredths at 512-d / 64 bytes). A threshold calibrated on true cosine would be
applied to those estimates, moving the false-accept rate. So this backend keeps every exact
float32 row in a side store (``index.store.VectorStore``) and answers only true cosines: it
asks the IVF for ``max(k * rerank_factor, rerank_min)`` candidates and re-scores them.

Training: the coarse quantiser and the PQ codebooks are learnt from the gallery itself.
Until ``train_min`` faces are present the backend searches the side store exactly (a small
gallery is served best by brute force anyway); the add that reaches ``train_min`` trains on
everything present (at most ``train_sample`` rows) and indexes it. ``rebuild`` (replay from
the log) drops the training and retrains on the new content. ``retrain_growth`` > 1 also
retrains in place once the gallery has grown that many times past the training size.

Options (defaults recommended for 512-d ArcFace embeddings): ``nlist`` (None: ~4*sqrt(n)
at training time, at most n/39), ``m`` (None: dim/8, i.e. 64) sub-quantisers of ``nbits=8`` (64 bytes a face),
``nprobe`` (None: nlist/4, at least 32), ``rerank_factor=10``, ``rerank_min=100``,
``train_min=10000``, ``train_sample=100000``, ``retrain_growth=0`` (off).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import faiss
import numpy as np

from index.base import IndexCorrupt, invalid
from index.labelled import LabelledIndex
from index.registry import register
from index.store import VectorStore, exact_top_k

INDEX_FILE = "ivfpq.faiss"
_SEED = 1234
_TRAIN_ITERATIONS = 10


def _positive(name: str, value: Any, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise invalid(f"{name} must be a positive integer, got {value!r}")


@register("faiss-ivfpq")
class FaissIvfPqIndex(LabelledIndex):
    exact: ClassVar[bool] = False

    def __init__(
        self,
        *,
        dim: int,
        model_id: str,
        nlist: int | None = None,
        m: int | None = None,
        nbits: int = 8,
        nprobe: int | None = None,
        rerank_factor: int = 10,
        rerank_min: int = 100,
        train_min: int = 10_000,
        train_sample: int = 100_000,
        retrain_growth: float = 0.0,
    ) -> None:
        super().__init__(dim=dim, model_id=model_id)
        if m is None:  # dim / 8 dimensions a sub-quantiser: 64 bytes a face at 512-d
            m = next(d for d in range(max(1, dim // 8), 0, -1) if dim % d == 0)
        for name, value in (("m", m), ("nbits", nbits), ("rerank_factor", rerank_factor)):
            _positive(name, value)
        for name, value in (
            ("rerank_min", rerank_min),
            ("train_min", train_min),
            ("train_sample", train_sample),
        ):
            _positive(name, value)
        _positive("nlist", nlist, allow_none=True)
        _positive("nprobe", nprobe, allow_none=True)
        if dim % m:
            raise invalid(f"m={m} must divide the dimension {dim}")
        if nbits > 16:
            raise invalid(f"nbits must be at most 16, got {nbits}")
        if retrain_growth != 0 and not retrain_growth > 1:
            raise invalid(f"retrain_growth must be 0 (off) or above 1, got {retrain_growth!r}")
        self._nlist, self._m, self._nbits, self._nprobe = nlist, m, nbits, nprobe
        self._rerank_factor, self._rerank_min = rerank_factor, rerank_min
        self._train_min, self._train_sample = train_min, train_sample
        self._retrain_growth = float(retrain_growth)
        self._store = VectorStore(dim)
        self._ivf: faiss.IndexIVFPQ | None = None
        self._trained_on = 0

    # --- training

    @property
    def trained(self) -> bool:
        return self._ivf is not None

    @property
    def training_size(self) -> int:
        """How many faces the live codebooks were learnt from (0: untrained, exact search)."""
        return self._trained_on

    def _train(self) -> None:
        vectors, labels = self._store.vectors, self._store.labels
        n = len(labels)
        nlist = self._nlist or max(1, min(int(4 * math.sqrt(n)), n // 39))
        sample = vectors
        if n > self._train_sample:
            chosen = np.random.default_rng(_SEED).choice(n, self._train_sample, replace=False)
            sample = vectors[np.sort(chosen)]
        quantizer = faiss.IndexFlatL2(self.dim)
        # Unit rows: L2 order is inner-product order, and the scores are re-ranked anyway.
        ivf = faiss.IndexIVFPQ(quantizer, self.dim, nlist, self._m, self._nbits)
        for params in (ivf.cp, ivf.pq.cp):  # 10 k-means rounds: enough when the shortlist is re-ranked
            params.seed, params.niter = _SEED, _TRAIN_ITERATIONS
        ivf.train(sample)
        ivf.add_with_ids(vectors, labels)
        self._ivf, self._trained_on = ivf, n

    def _nprobe_for(self, ivf: faiss.IndexIVFPQ) -> int:
        return min(ivf.nlist, self._nprobe or max(32, ivf.nlist // 4))

    # --- LabelledIndex hooks

    def _add_vectors(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        self._store.add(labels, vectors)
        if self._ivf is not None:
            self._ivf.add_with_ids(vectors, labels)
            if self._retrain_growth and len(self._store) >= self._retrain_growth * self._trained_on:
                self._train()
        elif len(self._store) >= self._train_min:
            self._train()

    def _remove_vectors(self, labels: np.ndarray) -> None:
        self._store.remove(labels)
        if self._ivf is not None:
            self._ivf.remove_ids(labels)  # type: ignore[arg-type]  # faiss wraps arrays in a selector

    def _search_vectors(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._ivf is None:
            scores, rows = exact_top_k(queries, self._store.vectors, k)
            return scores, self._store.labels[rows]
        width = min(max(k * self._rerank_factor, self._rerank_min), len(self._store))
        # faiss's bundled stubs lag its run-time classes.
        params = faiss.SearchParametersIVF(nprobe=self._nprobe_for(self._ivf))  # type: ignore[call-arg]
        _, candidates = self._ivf.search(queries, width, params=params)
        return self._store.rerank(queries, candidates, k)

    def _reset_vectors(self) -> None:
        self._store.clear()
        self._ivf, self._trained_on = None, 0

    def _vector_count(self) -> int:
        return len(self._store)

    def _stored_labels(self) -> np.ndarray:
        return self._store.labels

    def _vector_bytes(self) -> int:
        codes = 0 if self._ivf is None else int(self._ivf.ntotal) * (self._ivf.code_size + 8)
        return self._store.nbytes + codes

    def _options(self) -> dict[str, Any]:
        return {
            "nlist": self._nlist,
            "m": self._m,
            "nbits": self._nbits,
            "nprobe": self._nprobe,
            "rerank_factor": self._rerank_factor,
            "rerank_min": self._rerank_min,
            "train_min": self._train_min,
            "train_sample": self._train_sample,
            "retrain_growth": self._retrain_growth,
        }

    def _save_vectors(self, directory: Path) -> None:
        self._store.save(directory)
        if self._ivf is not None:
            (directory / "trained_on").write_text(str(self._trained_on), encoding="ascii")
            faiss.write_index(self._ivf, str(directory / INDEX_FILE))

    def _load_vectors(self, directory: Path) -> None:
        self._store.load(directory)
        if not (directory / INDEX_FILE).exists():
            return
        loaded = faiss.read_index(str(directory / INDEX_FILE))
        if not isinstance(loaded, faiss.IndexIVFPQ) or loaded.d != self.dim:
            raise IndexCorrupt(f"{directory / INDEX_FILE} is a {type(loaded).__name__} of dim {loaded.d}")
        if loaded.ntotal != len(self._store):
            raise IndexCorrupt(
                f"{directory / INDEX_FILE} holds {loaded.ntotal} codes, {len(self._store)} rows"
            )
        self._ivf = loaded
        self._trained_on = int((directory / "trained_on").read_text(encoding="ascii"))
