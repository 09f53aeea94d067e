from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.quality import DEFAULT_QUALITY_MIN, FACTORS, DefaultQuality, QualityReport, head_pose

# InsightFace's 112x112 template: a frontal face.
FRONTAL = np.array(
    [[38.29, 51.70], [73.53, 51.50], [56.03, 71.74], [41.55, 92.37], [70.73, 92.20]], np.float32
)


def _sharp_crop() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)


def _rotated(points: np.ndarray, degrees: float) -> np.ndarray:
    centre = points.mean(axis=0)
    t = np.radians(degrees)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return ((points - centre) @ rot.T + centre).astype(np.float32)


def _turned(nose_offset: float) -> np.ndarray:
    """The template with the nose moved along the eye line by `nose_offset` half eye distances."""
    points = FRONTAL.copy()
    points[1, 1] = points[0, 1]  # level eyes, so the offset is purely horizontal
    half = (points[1, 0] - points[0, 0]) / 2
    points[2, 0] = (points[0, 0] + points[1, 0]) / 2 + nose_offset * half
    return points


def _assess(crop=None, landmarks=FRONTAL, det_score=0.95, face_size=200.0) -> QualityReport:
    crop = _sharp_crop() if crop is None else crop
    return DefaultQuality().assess(crop, landmarks=landmarks, det_score=det_score, face_size=face_size)


def test_head_pose_of_the_template_is_frontal() -> None:
    yaw, roll = head_pose(FRONTAL)
    assert yaw < 3 and abs(roll) < 1


@pytest.mark.parametrize(("offset", "yaw"), [(0.5, 30.0), (-0.5, 30.0), (1.0, 90.0), (2.0, 90.0)])
def test_yaw_from_the_nose_offset(offset: float, yaw: float) -> None:
    assert head_pose(_turned(offset))[0] == pytest.approx(yaw, abs=1.0)


def test_roll_is_the_eye_line_angle() -> None:
    assert head_pose(_rotated(FRONTAL, 30))[1] == pytest.approx(30, abs=1.0)
    assert head_pose(_rotated(FRONTAL, -50))[1] == pytest.approx(-50, abs=1.0)


def test_collapsed_eyes_read_as_a_profile() -> None:
    points = FRONTAL.copy()
    points[1] = points[0]
    assert head_pose(points)[0] == 90.0


def test_sharp_big_frontal_confident_face_passes() -> None:
    report = _assess()
    assert set(report.factors) == set(FACTORS)
    assert report.score == pytest.approx(0.95, abs=1e-6)  # only the detector's confidence < 1
    assert report.score >= DEFAULT_QUALITY_MIN


@pytest.mark.parametrize(
    ("kwargs", "factor"),
    [
        ({"crop": cv2.GaussianBlur(_sharp_crop(), (0, 0), 4)}, "sharpness"),
        ({"crop": np.full((112, 112, 3), 128, np.uint8)}, "sharpness"),
        ({"face_size": 15.0}, "size"),
        ({"face_size": 24.0}, "size"),
        ({"landmarks": _turned(1.0)}, "pose"),  # profile: nose in line with an eye
        ({"landmarks": _turned(-0.97)}, "pose"),
        ({"landmarks": _rotated(FRONTAL, 70)}, "pose"),  # roll: upside-ish or bad landmarks
        ({"det_score": 0.3}, "detection"),
    ],
)
def test_each_bad_factor_alone_rejects_and_is_named(kwargs: dict, factor: str) -> None:
    report = _assess(**kwargs)
    assert report.score < DEFAULT_QUALITY_MIN
    assert report.weakest == factor
    assert report.explain().startswith(factor)


def test_moderate_turn_and_tilt_still_pass() -> None:
    assert _assess(landmarks=_turned(0.5)).score >= DEFAULT_QUALITY_MIN  # ~30 deg yaw
    assert _assess(landmarks=_rotated(FRONTAL, 35)).score >= DEFAULT_QUALITY_MIN


def test_pose_explanation_carries_the_angles() -> None:
    text = _assess(landmarks=_turned(1.0)).explain()
    assert "yaw ~90 deg" in text


def test_score_is_the_product_of_factors() -> None:
    report = _assess(face_size=50.0, det_score=0.8)
    assert report.factors["size"] == pytest.approx(0.5)
    assert report.score == pytest.approx(np.prod(list(report.factors.values())))
