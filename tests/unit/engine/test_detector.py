from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from engine.detector import ScrfdDetector, YuNetDetector


class StubYuNet:
    """Stands in for cv2.FaceDetectorYN: reports one face at fixed input-pixel coordinates."""

    def __init__(self, rows: np.ndarray | None) -> None:
        self.rows = rows
        self.sizes: list[tuple[int, int]] = []

    def setInputSize(self, size: tuple[int, int]) -> None:
        self.sizes.append(size)

    def detect(self, image: np.ndarray) -> tuple[int, np.ndarray | None]:
        assert image.shape[1::-1] == self.sizes[-1]
        return 1, self.rows


def _row(x: float, y: float, w: float, h: float, score: float = 0.9) -> list[float]:
    relative = [(0.3, 0.4), (0.7, 0.4), (0.5, 0.6), (0.35, 0.8), (0.65, 0.8)]
    points = [v for rx, ry in relative for v in (x + rx * w, y + ry * h)]
    return [x, y, w, h, *points, score]


def test_large_images_are_downscaled_and_results_mapped_back() -> None:
    stub = StubYuNet(np.array([_row(100, 50, 80, 100)], np.float32))
    faces = YuNetDetector(stub, max_side=640).detect(np.zeros((1000, 1280, 3), np.uint8))
    assert stub.sizes == [(640, 500)]
    (face,) = faces
    assert face.bbox == (200.0, 100.0, 160.0, 200.0)
    assert face.landmarks.shape == (5, 2) and face.landmarks.dtype == np.float32
    np.testing.assert_allclose(face.landmarks[0], [248.0, 180.0])
    assert face.score == np.float32(0.9)
    assert face.area == 160.0 * 200.0


def test_small_images_are_not_resized() -> None:
    stub = StubYuNet(np.array([_row(10, 10, 50, 60)], np.float32))
    (face,) = YuNetDetector(stub, max_side=640).detect(np.zeros((120, 100, 3), np.uint8))
    assert stub.sizes == [(100, 120)]
    assert face.bbox == (10.0, 10.0, 50.0, 60.0)


def test_no_faces_and_boxes_clipped_to_the_image() -> None:
    assert YuNetDetector(StubYuNet(None), max_side=640).detect(np.zeros((50, 50, 3))) == []
    stub = StubYuNet(np.array([_row(-10, 30, 40, 40), _row(60, 60, 10, 10)], np.float32))
    faces = YuNetDetector(stub, max_side=640).detect(np.zeros((50, 50, 3), np.uint8))
    assert [f.bbox for f in faces] == [(0.0, 30.0, 30.0, 20.0)]  # the second is outside


def test_scrfd_adapter_converts_corner_boxes() -> None:
    class StubScrfd:
        def detect(self, img, input_size, det_thresh):
            assert input_size == (640, 640) and det_thresh == 0.5
            boxes = np.array([[10, 20, 110, 170, 0.8]], np.float32)
            return boxes, np.arange(10, dtype=np.float32).reshape(1, 5, 2)

    (face,) = ScrfdDetector(StubScrfd(), max_side=640, score_threshold=0.5).detect(
        np.zeros((200, 200, 3), np.uint8)
    )
    assert face.bbox == (10.0, 20.0, 100.0, 150.0)
    assert face.score == np.float32(0.8)
    assert face.landmarks.shape == (5, 2)


class FakeDetectorSession:
    """An onnxruntime session double for SCRFD/RetinaFace-style models: 3 strides (8, 16, 32),
    2 anchors each, with keypoints (9 outputs). One anchor at stride 8 fires: centre (96, 80),
    box distances (32, 40, 32, 40) -> corners (64, 40)-(128, 120)."""

    def __init__(self) -> None:
        self.input_shapes: list[tuple[int, ...]] = []

    def get_inputs(self):
        return [SimpleNamespace(name="input.1", shape=[1, 3, "?", "?"])]

    def get_outputs(self):
        kinds = ["score"] * 3 + ["bbox"] * 3 + ["kps"] * 3
        widths = {"score": 1, "bbox": 4, "kps": 10}
        return [SimpleNamespace(name=f"{k}_{i}", shape=["n", widths[k]]) for i, k in enumerate(kinds)]

    def get_providers(self):
        return ["CPUExecutionProvider"]

    def run(self, names, feeds):
        blob = feeds["input.1"]
        self.input_shapes.append(blob.shape)
        height, width = blob.shape[2:]
        scores, boxes, kps = [], [], []
        for stride in (8, 16, 32):
            k = (height // stride) * (width // stride) * 2
            s, b, p = (
                np.zeros((k, 1), np.float32),
                np.zeros((k, 4), np.float32),
                np.zeros((k, 10), np.float32),
            )
            if stride == 8:
                index = (10 * (width // 8) + 12) * 2  # row 10, col 12 -> centre (96, 80)
                s[index] = 0.93
                b[index] = np.array([32, 40, 32, 40]) / 8
                offsets = np.array([[-12, -10], [12, -10], [0, 5], [-10, 20], [10, 20]], np.float32)
                p[index] = offsets.reshape(-1) / 8
            scores.append(s)
            boxes.append(b)
            kps.append(p)
        return scores + boxes + kps


def _check_insightface_detection(faces) -> None:
    (face,) = faces
    assert face.bbox == pytest.approx((64.0, 40.0, 64.0, 80.0))
    assert face.score == pytest.approx(0.93)
    np.testing.assert_allclose(face.landmarks[0], [84.0, 70.0])
    np.testing.assert_allclose(face.landmarks[4], [106.0, 100.0])


def test_scrfd_through_insightface_model_zoo_with_a_session_double() -> None:
    from insightface.model_zoo.scrfd import SCRFD

    session = FakeDetectorSession()
    detector = ScrfdDetector(SCRFD(model_file=None, session=session), max_side=640, score_threshold=0.5)
    _check_insightface_detection(detector.detect(np.zeros((640, 640, 3), np.uint8)))
    assert session.input_shapes == [(1, 3, 640, 640)]
    strict = ScrfdDetector(SCRFD(model_file=None, session=session), max_side=640, score_threshold=0.95)
    assert strict.detect(np.zeros((640, 640, 3), np.uint8)) == []


def test_insightface_adapters_map_letterboxed_coordinates_back() -> None:
    from insightface.model_zoo.scrfd import SCRFD

    # A 1280x1280 image is letterboxed into 640x640 at scale 0.5: boxes come back doubled.
    detector = ScrfdDetector(
        SCRFD(model_file=None, session=FakeDetectorSession()), max_side=640, score_threshold=0.5
    )
    (face,) = detector.detect(np.zeros((1280, 1280, 3), np.uint8))
    assert face.bbox == pytest.approx((128.0, 80.0, 128.0, 160.0))


def test_detector_registry_names_every_kind() -> None:
    from engine.factory import DETECTORS

    assert set(DETECTORS) == {"yunet", "scrfd", "retinaface"}


def test_a_detector_without_landmarks_is_refused() -> None:
    class NoKps:
        def detect(self, img, input_size, det_thresh):
            return np.array([[0, 0, 10, 10, 0.9]], np.float32), None

    with pytest.raises(ValueError, match="landmarks"):
        ScrfdDetector(NoKps(), max_side=640, score_threshold=0.5).detect(np.zeros((20, 20, 3), np.uint8))
