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


def clustered_gallery(
    rng: np.random.Generator,
    persons: int,
    faces_per_person: int,
    queries: int,
    *,
    dim: int = 512,
    noise: float = 0.03,
) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """Identities with noisy samples, like face embeddings (genuine cosine ~0.68 at 512-d).

    Returns face ids, person ids, the gallery rows and ``queries`` new samples of random
    enrolled persons.
    """
    centres = unit_vectors(rng, persons, dim)

    def samples(who: np.ndarray) -> np.ndarray:
        rows = centres[who] + rng.standard_normal((len(who), dim)).astype(np.float32) * noise
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    who = np.repeat(np.arange(persons), faces_per_person)
    face_ids = [f"face-{i:06d}" for i in range(len(who))]
    person_ids = [f"person-{p:05d}" for p in who.tolist()]
    return face_ids, person_ids, samples(who), samples(rng.choice(persons, queries, replace=False))
