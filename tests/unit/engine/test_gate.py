from __future__ import annotations

import numpy as np
import pytest

from core.errors import ErrorCode, FacestreamError
from engine.gate import apply_bar, scored
from engine.types import PreparedFace
from schemas.events import BBox


def _face(quality: float, reason: str = "sharpness 0.05: image blurred or out of focus") -> PreparedFace:
    return PreparedFace(
        crop=np.zeros((112, 112, 3), np.uint8),
        bbox=BBox(x=0, y=0, width=10, height=10),
        landmarks=np.zeros((5, 2), np.float32),
        det_score=0.9,
        quality=quality,
        quality_reason=reason,
    )


def test_scored_replaces_the_heuristic_with_the_final_quality() -> None:
    faces = [_face(0.9), _face(0.1)]
    assert [f.quality for f in scored(faces, np.array([0.2, 0.7]))] == [0.2, 0.7]
    assert [f.quality for f in scored(faces, None)] == [0.9, 0.1]


def test_faces_under_the_bar_are_dropped_with_their_vectors() -> None:
    faces, vectors = apply_bar([_face(0.3), _face(0.6)], [np.zeros(2), np.ones(2)], 0.5)
    assert [f.quality for f in faces] == [0.6] and np.array_equal(vectors[0], np.ones(2))


def test_none_left_is_low_quality_naming_score_bar_and_reason() -> None:
    with pytest.raises(FacestreamError) as info:
        apply_bar([_face(0.2), _face(0.3)], [np.zeros(2), np.zeros(2)], 0.5)
    assert info.value.code == ErrorCode.LOW_QUALITY
    assert info.value.message == (
        "face quality 0.30 is below 0.50: sharpness 0.05: image blurred or out of focus"
    )


def test_bar_zero_keeps_everything() -> None:
    faces, _ = apply_bar([_face(0.0)], [np.zeros(2)], 0.0)
    assert len(faces) == 1
