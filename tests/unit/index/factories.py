"""Deterministic test data for the index tests."""

from __future__ import annotations

import numpy as np

MODEL = "test-pack/fake-recognizer@1"
DIM = 32


def unit_vectors(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def gallery(
    rng: np.random.Generator, n: int, *, faces_per_person: int = 3, dim: int = DIM
) -> tuple[list[str], list[str], np.ndarray]:
    face_ids = [f"face-{i:04d}" for i in range(n)]
    person_ids = [f"person-{i // faces_per_person:04d}" for i in range(n)]
    return face_ids, person_ids, unit_vectors(rng, n, dim)


def brute_force(gallery_vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k (rows, similarities) by cosine, the reference every backend must match."""
    similarities = queries @ gallery_vectors.T
    order = np.argsort(-similarities, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(similarities, order, axis=1)
