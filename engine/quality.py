"""Face-image quality (FIQA) behind a small interface, with a cheap, explainable default.

The default score multiplies four factors, each in [0, 1], so any one bad factor pulls the
whole score down (a product, not a mean: a blurred face must not be rescued by being large),
and the weakest factor is the reason a face is rejected:

    detection = clip(det_score, 0, 1)
    size      = ramp(min(face_w, face_h); 20 px -> 0, 80 px -> 1)       original-image pixels
    sharpness = ramp(var(Laplacian(grey 112x112 crop)); 0 -> 0, 300 -> 1)
    pose      = ramp(yaw; 75 deg -> 0, 35 deg -> 1) * ramp(|roll|; 60 deg -> 0, 40 deg -> 1)
    quality   = detection * size * sharpness * pose

Yaw comes from the 5 landmarks: how far the nose tip sits from the midpoint of the eyes, in
units of half the inter-eye distance (0 frontal, 1 nose in line with an eye), read as
asin(offset). It is a rough estimate (no depth), good enough to tell near-frontal from
three-quarter and profile. Roll is the angle of the eye line; alignment removes it, so it only
counts when it is large enough to suggest upside-down or mislocated landmarks. Pitch is not
estimated (the 5 points constrain it poorly).

Since issue 11 this heuristic is the *explanation* of a face's quality (its weakest factor names
why a face is poor) and the quality of packs without a calibrated embedding norm; the default
pack's quality is `norm_quality` of the recognizer's embedding norm, which the EDC showed to
predict recognition errors better (docs/engine.md, "Face-image quality"). The heuristic judges
pixels, not recognisability: a 32 px face scores ~0.06 on `size` although the recognizer
identifies it. `DEFAULT_QUALITY_MIN` is kept as the heuristic's historical bar (all 61 sample
photos score 0.92-1.0, blurred copies 0.03-0.12).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

DEFAULT_QUALITY_MIN = 0.5

MIN_FACE_PX = 20.0
FULL_FACE_PX = 80.0
FULL_SHARPNESS = 300.0
FULL_YAW_DEG = 35.0
MAX_YAW_DEG = 75.0
FULL_ROLL_DEG = 40.0
MAX_ROLL_DEG = 60.0

FACTORS = ("detection", "size", "sharpness", "pose")


@dataclass(frozen=True)
class QualityReport:
    score: float  # [0, 1]
    factors: dict[str, float]  # each in [0, 1], keys FACTORS
    yaw_deg: float
    roll_deg: float

    @property
    def weakest(self) -> str:
        return min(self.factors, key=lambda name: self.factors[name])

    def explain(self) -> str:
        """What a rejection message says: the weakest factor and the measurements behind it."""
        name = self.weakest
        detail = {
            "detection": "low detector confidence",
            "size": "face too small",
            "sharpness": "image blurred or out of focus",
            "pose": f"head turned or tilted (yaw ~{self.yaw_deg:.0f} deg, roll {self.roll_deg:.0f} deg)",
        }[name]
        return f"{name} {self.factors[name]:.2f}: {detail}"


class QualityScorer(Protocol):
    def assess(
        self, crop: np.ndarray, *, landmarks: np.ndarray, det_score: float, face_size: float
    ) -> QualityReport:
        """Quality of one aligned 112x112 BGR crop; `landmarks` are the 5 points in the source
        image (any pixel scale); `face_size` is the bbox's shorter side in original pixels."""
        ...


def _ramp(value: float, zero: float, one: float) -> float:
    """0 at `zero`, 1 at `one`, linear between, clipped (works for decreasing ramps too)."""
    return float(np.clip((value - zero) / (one - zero), 0.0, 1.0))


def laplacian_variance(crop: np.ndarray) -> float:
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def head_pose(landmarks: np.ndarray) -> tuple[float, float]:
    """(yaw, roll) in degrees from 5 landmarks in InsightFace order; yaw is unsigned."""
    points = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    left_eye, right_eye, nose = points[0], points[1], points[2]
    eye_vec = right_eye - left_eye
    eye_dist = float(np.hypot(*eye_vec))
    if eye_dist < 1e-6:
        return 90.0, 0.0  # both eyes on one point: a profile (or a broken detection)
    roll = math.degrees(math.atan2(eye_vec[1], eye_vec[0]))
    # The nose's offset from the eyes' midpoint, along the eye line, in half eye distances.
    along = float(np.dot(nose - (left_eye + right_eye) / 2, eye_vec / eye_dist))
    offset = min(1.0, abs(along) / (eye_dist / 2))
    return math.degrees(math.asin(offset)), roll


def norm_quality(norms: np.ndarray, span: tuple[float, float]) -> np.ndarray:
    """Quality in [0, 1] from the recognizer's pre-normalisation embedding norms: `span[0]` -> 0,
    `span[1]` -> 1, linear between, clipped. ArcFace-family losses make the norm grow with how
    confidently the network recognises a face (the idea behind MagFace's magnitude)."""
    low, high = span
    return np.clip((np.asarray(norms, np.float64) - low) / (high - low), 0.0, 1.0)


class DefaultQuality:
    def assess(
        self, crop: np.ndarray, *, landmarks: np.ndarray, det_score: float, face_size: float
    ) -> QualityReport:
        yaw, roll = head_pose(landmarks)
        factors = {
            "detection": float(np.clip(det_score, 0.0, 1.0)),
            "size": _ramp(face_size, MIN_FACE_PX, FULL_FACE_PX),
            "sharpness": _ramp(laplacian_variance(crop), 0.0, FULL_SHARPNESS),
            "pose": _ramp(yaw, MAX_YAW_DEG, FULL_YAW_DEG) * _ramp(abs(roll), MAX_ROLL_DEG, FULL_ROLL_DEG),
        }
        score = float(np.prod(list(factors.values())))
        return QualityReport(score=score, factors=factors, yaw_deg=yaw, roll_deg=roll)
