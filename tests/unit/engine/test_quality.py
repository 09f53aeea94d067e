from __future__ import annotations

import cv2
import numpy as np

from engine.quality import DefaultQuality


def _sharp_crop() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)


def test_sharp_big_confident_face_scores_high() -> None:
    q = DefaultQuality().score(_sharp_crop(), det_score=0.95, face_size=200)
    assert 0.95 < q <= 1.0


def test_blur_tiny_faces_and_low_scores_pull_quality_down() -> None:
    quality = DefaultQuality()
    crop = _sharp_crop()
    blurred = cv2.GaussianBlur(crop, (0, 0), 4)
    base = quality.score(crop, det_score=0.95, face_size=200)
    assert quality.score(blurred, det_score=0.95, face_size=200) < base * 0.6
    assert quality.score(crop, det_score=0.95, face_size=15) == 0.0
    assert quality.score(crop, det_score=0.95, face_size=60) < base
    assert quality.score(crop, det_score=0.3, face_size=200) < base
    flat = np.full((112, 112, 3), 128, np.uint8)
    assert quality.score(flat, det_score=0.95, face_size=200) == 0.0
