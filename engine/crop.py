"""The aligned crop of a face, from an image decoded at no less resolution than the crop needs.

Detection runs on a reduced decode of a large JPEG (`engine.decode`). The 112x112 crop needs the
face at the template's size or larger: where the similarity transform onto the template would
enlarge the face (a small face in a big photo), the same bytes are decoded again at the DCT
scale that gives the face enough pixels (full resolution at most) and the landmarks, found on
the reduced image, are scaled to it. Otherwise the reduced image already holds every pixel the
crop keeps, and a DCT-scaled decode is a better-filtered source than the full image warped down.
"""

from __future__ import annotations

import numpy as np

from engine.align import CROP_SIZE, align
from engine.decode import DecodedImage

# InsightFace's 5-point template for 112x112 crops (insightface.utils.face_align.arcface_dst).
_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
) * (CROP_SIZE / 112.0)


def enlargement(landmarks: np.ndarray) -> float:
    """How much the alignment transform scales the face: above 1, the crop would upsample."""
    points = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    spread = np.linalg.norm(points - points.mean(axis=0))
    if not spread > 0:
        return 1.0
    return float(np.linalg.norm(_TEMPLATE - _TEMPLATE.mean(axis=0)) / spread)


def aligned_crop(decoded: DecodedImage, landmarks: np.ndarray) -> np.ndarray:
    """The 112x112 crop of the face whose ``landmarks`` are in ``decoded``'s pixels."""
    source = decoded.at_scale(decoded.scale * enlargement(landmarks))
    if source is decoded:
        return align(decoded.bgr, landmarks)
    points = np.asarray(landmarks, dtype=np.float32).reshape(5, 2) * (source.scale / decoded.scale)
    return align(source.bgr, points)
