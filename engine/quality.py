"""Face-image quality (FIQA) behind a small interface, with a cheap default.

Default score, each term in [0, 1], combined by geometric mean so any one bad term pulls the
whole score down:

    detection = clip(det_score, 0, 1)
    size      = clip((min(face_w, face_h) - 20) / (100 - 20), 0, 1)   # face px, original image
    sharpness = clip(var(Laplacian(grey 112x112 crop)) / 400, 0, 1)
    quality   = (detection * size * sharpness) ** (1/3)

Calibration (sample set, YuNet + norm_crop): sharp crops have Laplacian variance 600-5700
(all score 1); the same crops after a sigma-2 Gaussian blur score 8-24 (sharpness 0.02-0.06).
Faces under 20 px carry too little detail for a 112 px template and score 0.
"""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np

MIN_FACE_PX = 20.0
FULL_FACE_PX = 100.0
FULL_SHARPNESS = 400.0


class QualityScorer(Protocol):
    def score(self, crop: np.ndarray, *, det_score: float, face_size: float) -> float:
        """Quality in [0, 1] of one aligned 112x112 BGR crop; `face_size` is the bbox's
        shorter side in original-image pixels."""
        ...


def laplacian_variance(crop: np.ndarray) -> float:
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


class DefaultQuality:
    def score(self, crop: np.ndarray, *, det_score: float, face_size: float) -> float:
        detection = float(np.clip(det_score, 0.0, 1.0))
        size = float(np.clip((face_size - MIN_FACE_PX) / (FULL_FACE_PX - MIN_FACE_PX), 0.0, 1.0))
        sharpness = float(np.clip(laplacian_variance(crop) / FULL_SHARPNESS, 0.0, 1.0))
        return float((detection * size * sharpness) ** (1.0 / 3.0))
