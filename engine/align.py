"""Alignment is a pure function: a similarity transform onto InsightFace's 112x112 template."""

from __future__ import annotations

import warnings

import numpy as np
from insightface.utils.face_align import norm_crop

CROP_SIZE = 112

# norm_crop calls scikit-image's deprecated SimilarityTransform.estimate on every face; the
# result is unchanged, and one warning per face would flood worker logs.
warnings.filterwarnings(
    "ignore",
    message="`estimate` is deprecated",
    category=FutureWarning,
    module="insightface.utils.face_align",
)


def align(bgr: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Warp the face whose 5 landmarks (InsightFace order) are given into a 112x112x3 crop."""
    points = np.asarray(landmarks, dtype=np.float32).reshape(5, 2)
    return np.ascontiguousarray(norm_crop(bgr, points, image_size=CROP_SIZE), dtype=np.uint8)
