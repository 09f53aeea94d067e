from __future__ import annotations

import numpy as np

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
