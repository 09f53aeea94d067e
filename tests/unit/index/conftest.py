"""Fixtures shared by the index tests: every registered backend, and a factory for it."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from index import VectorIndex, create, names
from tests.unit.index.factories import DIM, MODEL

MakeIndex = Callable[..., VectorIndex]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(params=names())
def backend(request: pytest.FixtureRequest) -> str:
    """Every registered backend: a new backend only has to register to be held to the contract."""
    return str(request.param)


@pytest.fixture
def make_index(backend: str) -> MakeIndex:
    def make(*, dim: int = DIM, model_id: str = MODEL) -> VectorIndex:
        return create(backend, dim=dim, model_id=model_id)

    return make
