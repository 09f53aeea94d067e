"""Approximate backends at their default (recommended) settings agree with exact search.

recall@1 = how often the approximate top-1 face is flat's top-1 face, on a clustered 512-d
gallery (identities with several noisy samples; queries are new samples of enrolled people).
"""

from __future__ import annotations

from collections.abc import Iterator

import faiss
import numpy as np
import pytest

from index import create, names
from tests.unit.index.factories import clustered_gallery

PERSONS, FACES_PER_PERSON, QUERIES = 3_000, 4, 400  # 12k faces: above IVF-PQ's train_min
APPROXIMATE = [name for name in ("faiss-ivfpq", "faiss-hnsw", "scann") if name in names()]


@pytest.fixture(scope="module", autouse=True)
def one_faiss_thread() -> Iterator[None]:
    """OpenMP's spinning threads slow training several-fold on a busy 2-core CI box."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(threads)


@pytest.fixture(scope="module")
def data() -> tuple[list[str], list[str], np.ndarray, np.ndarray, list[str]]:
    faces, persons, vectors, queries = clustered_gallery(
        np.random.default_rng(2024), PERSONS, FACES_PER_PERSON, QUERIES
    )
    flat = create("faiss-flat", dim=512, model_id="m@1")
    flat.add(faces, persons, vectors)
    truth = [hits[0].face_id for hits in flat.search(queries, 1)]
    return faces, persons, vectors, queries, truth


@pytest.mark.parametrize("backend", APPROXIMATE)
def test_recall_at_1_against_flat(backend: str, data: tuple) -> None:
    faces, persons, vectors, queries, truth = data
    index = create(backend, dim=512, model_id="m@1")
    index.add(faces, persons, vectors)
    if backend == "faiss-ivfpq":
        assert index.trained  # type: ignore[attr-defined]  # the PQ path, not the exact buffer
    results = index.search(queries, 5)
    recall = np.mean([hits[0].face_id == want for hits, want in zip(results, truth, strict=True)])
    assert recall >= 0.98
    # re-ranked / graph scores are true cosines, not estimates: the threshold means the same
    row_of = {face: row for row, face in enumerate(faces)}
    for query, hits in zip(queries[:50], results[:50], strict=True):
        exact = [float(vectors[row_of[hit.face_id]] @ query) for hit in hits]
        assert [hit.similarity for hit in hits] == pytest.approx(exact, abs=1e-5)
