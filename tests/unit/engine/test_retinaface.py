"""The RetinaFace adapter's decoding, against an onnxruntime session double (no weights)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from engine.retinaface import MIN_INPUT_SIDE, RetinaFaceDetector, priors

# The face the double reports, in the double's input pixels: an anchor of size 32 at stride 8,
# row 10, col 12 (centre (100, 84)), widened x1.25 in height; the 5 points placed around it.
POINTS = np.array([[-6, -4], [6, -4], [0, 2], [-5, 8], [5, 8]], np.float32)  # units of 0.1 * 32 px


class RetinaSession:
    def __init__(self, score: float = 0.97) -> None:
        self.score = score
        self.shapes: list[tuple[int, ...]] = []

    def get_inputs(self):
        return [SimpleNamespace(name="input", shape=["batch_size", 3, "height", "width"])]

    def run(self, names, feeds):
        blob = feeds["input"]
        self.shapes.append(blob.shape)
        height, width = blob.shape[2:]
        n = len(priors(height, width))
        loc = np.zeros((1, n, 4), np.float32)
        conf = np.tile(np.array([[0.99, 0.01]], np.float32), (1, n, 1))
        marks = np.zeros((1, n, 10), np.float32)
        if height < 100 or width < 120:
            return [loc, conf, marks]  # the face of the double does not fit
        cols = -(-width // 8)
        index = (10 * cols + 12) * 2 + 1  # the second anchor size (32) of that cell
        loc[0, index] = [0.0, 0.0, 0.0, np.log(1.25) / 0.2]
        conf[0, index] = [1 - self.score, self.score]
        marks[0, index] = POINTS.reshape(-1)
        # A weaker overlapping duplicate that non-maximum suppression must drop.
        loc[0, index - 1] = [0.0, 0.0, np.log(2.0) / 0.2, np.log(2.5) / 0.2]
        conf[0, index - 1] = [0.2, 0.8]
        return [loc, conf, marks]


def test_priors_follow_the_graph_order() -> None:
    p = priors(64, 48)
    assert len(p) == 2 * (8 * 6 + 4 * 3 + 2 * 2)
    np.testing.assert_allclose(p[:3], [[4, 4, 16, 16], [4, 4, 32, 32], [12, 4, 16, 16]])


def test_decodes_box_landmarks_and_score_with_nms() -> None:
    session = RetinaSession()
    (face,) = RetinaFaceDetector(session, max_side=640, score_threshold=0.5).detect(
        np.zeros((200, 300, 3), np.uint8)
    )
    assert session.shapes == [(1, 3, 200, 300)]
    assert face.bbox == pytest.approx((100 - 16, 84 - 20, 32, 40))
    assert face.score == pytest.approx(0.97)
    np.testing.assert_allclose(face.landmarks, [100, 84] + POINTS * 3.2, rtol=1e-5)
    assert face.landmarks[0, 0] < face.landmarks[1, 0]  # InsightFace order: viewer's left eye first


def test_large_images_are_downscaled_and_mapped_back() -> None:
    session = RetinaSession()
    (face,) = RetinaFaceDetector(session, max_side=320, score_threshold=0.5).detect(
        np.zeros((400, 640, 3), np.uint8)
    )
    assert session.shapes == [(1, 3, 200, 320)]
    assert face.bbox == pytest.approx((168, 128, 64, 80))
    np.testing.assert_allclose(face.landmarks[2], [200, 168 + 2 * 6.4], rtol=1e-5)


def test_small_images_are_padded_not_upscaled() -> None:
    session = RetinaSession()
    RetinaFaceDetector(session, max_side=640, score_threshold=0.5).detect(np.zeros((40, 30, 3), np.uint8))
    assert session.shapes == [(1, 3, MIN_INPUT_SIDE, MIN_INPUT_SIDE)]


def test_scores_below_the_threshold_and_degenerate_images_give_nothing() -> None:
    detector = RetinaFaceDetector(RetinaSession(score=0.4), max_side=640, score_threshold=0.9)
    assert detector.detect(np.zeros((200, 300, 3), np.uint8)) == []
    assert detector.detect(np.zeros((1, 300, 3), np.uint8)) == []


def test_greyscale_input_is_accepted() -> None:
    session = RetinaSession()
    faces = RetinaFaceDetector(session, max_side=640, score_threshold=0.5).detect(
        np.zeros((200, 300), np.uint8)
    )
    assert len(faces) == 1 and session.shapes == [(1, 3, 200, 300)]
