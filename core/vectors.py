"""Embedding vectors on the wire: float32 little-endian bytes inside `schemas.events.Embedding`."""

from __future__ import annotations

import numpy as np

from core.errors import ErrorCode, FacestreamError
from schemas.events import Embedding, ModelInfo


def to_embedding(vector: np.ndarray, model: ModelInfo) -> Embedding:
    return Embedding(model=model, vector_f32le=np.asarray(vector, dtype="<f4").tobytes())


def from_embedding(embedding: Embedding) -> np.ndarray:
    size = len(embedding.vector_f32le)
    if size != 4 * embedding.model.dim:  # checked first: frombuffer raises on a ragged length
        raise FacestreamError(
            ErrorCode.INVALID_MESSAGE,
            f"embedding has {size} bytes, model {embedding.model.id} needs {4 * embedding.model.dim}",
        )
    vector = np.frombuffer(embedding.vector_f32le, dtype="<f4")
    if not np.all(np.isfinite(vector)):
        raise FacestreamError(ErrorCode.INVALID_MESSAGE, "embedding has non-finite values")
    return vector.astype(np.float32)
