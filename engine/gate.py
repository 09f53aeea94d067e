"""The quality bar, applied after embedding: which faces of an image a request keeps.

Pure: faces, their final qualities and vectors in; the kept ones out, or LOW_QUALITY when none
is left. The message names the score, the bar, and the image heuristic's weakest factor (why
the face is poor, in words a client can act on).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from core.errors import ErrorCode, FacestreamError
from engine.types import PreparedFace


def scored(
    faces: Sequence[PreparedFace], qualities: Sequence[float] | np.ndarray | None
) -> list[PreparedFace]:
    """The faces with their final quality (unchanged when the engine gave none)."""
    if qualities is None:
        return list(faces)
    return [dataclasses.replace(f, quality=round(float(q), 4)) for f, q in zip(faces, qualities, strict=True)]


def apply_bar(
    faces: Sequence[PreparedFace], vectors: Sequence[np.ndarray], bar: float
) -> tuple[list[PreparedFace], list[np.ndarray]]:
    """Faces (and their vectors) at or above `bar`; LOW_QUALITY when none is."""
    kept = [(f, v) for f, v in zip(faces, vectors, strict=True) if f.quality >= bar]
    if faces and not kept:
        worst = max(faces, key=lambda f: f.quality)
        reason = f": {worst.quality_reason}" if worst.quality_reason else ""
        raise FacestreamError(
            ErrorCode.LOW_QUALITY, f"face quality {worst.quality:.2f} is below {bar:.2f}{reason}"
        )
    return [f for f, _ in kept], [v for _, v in kept]
