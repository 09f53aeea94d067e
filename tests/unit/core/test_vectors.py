"""Embedding vectors on the wire."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import ErrorCode, FacestreamError
from core.vectors import from_embedding, to_embedding
from schemas.events import Embedding, ModelInfo

MODEL = ModelInfo(pack="p", recognizer="r", version="1", dim=8)


def test_roundtrip_is_exact() -> None:
    vector = np.random.default_rng(1).standard_normal(8).astype(np.float64)
    embedding = to_embedding(vector, MODEL)
    assert len(embedding.vector_f32le) == 32
    back = from_embedding(embedding)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, vector.astype(np.float32))
    again = Embedding.model_validate_json(embedding.model_dump_json())
    np.testing.assert_array_equal(from_embedding(again), back)


def test_little_endian_on_the_wire() -> None:
    assert to_embedding(np.array([1.0] + [0.0] * 7), MODEL).vector_f32le[:4] == b"\x00\x00\x80\x3f"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00" * 28,
        b"\x00" * 36,
        b"\x00" * 33,
        np.full(8, np.nan, "<f4").tobytes(),
        np.full(8, np.inf, "<f4").tobytes(),
    ],
)
def test_invalid_vectors(raw: bytes) -> None:
    with pytest.raises(FacestreamError) as info:
        from_embedding(Embedding(model=MODEL, vector_f32le=raw))
    assert info.value.code is ErrorCode.INVALID_MESSAGE
