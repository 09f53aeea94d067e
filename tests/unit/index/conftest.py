"""Fixtures shared by the index tests: every registered backend, and a factory for it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from index import VectorIndex, create, names
from tests.unit.index.factories import DIM, MODEL

MakeIndex = Callable[..., VectorIndex]

# Extra configurations held to the same contract: small enough that the contract's galleries
# (up to 200 faces) exercise the trained IVF-PQ path and the ScaNN tree + AH + reorder path.
CONFIGURED: dict[str, tuple[str, dict[str, Any]]] = {
    "faiss-ivfpq[trained]": (
        "faiss-ivfpq",
        {"nlist": 4, "m": 8, "nbits": 4, "nprobe": 4, "train_min": 40, "rerank_min": 256},
    ),
    "faiss-hnsw[compacting]": (
        "faiss-hnsw",
        {"M": 8, "efConstruction": 40, "efSearch": 64, "compact_ratio": 0.05},
    ),
    "scann[tree]": ("scann", {"tree_min": 40, "reorder_factor": 30}),
}
CASES: dict[str, tuple[str, dict[str, Any]]] = {name: (name, {}) for name in names()} | {
    case: spec for case, spec in CONFIGURED.items() if spec[0] in names()
}


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """Every registered backend (a new backend only has to register to be held to the
    contract), plus the configurations in ``CONFIGURED``."""
    return CASES[str(request.param)]


@pytest.fixture
def backend(case: tuple[str, dict[str, Any]]) -> str:
    return case[0]


@pytest.fixture
def make_index(case: tuple[str, dict[str, Any]]) -> MakeIndex:
    name, options = case

    def make(*, dim: int = DIM, model_id: str = MODEL) -> VectorIndex:
        return create(name, dim=dim, model_id=model_id, **options)

    return make
