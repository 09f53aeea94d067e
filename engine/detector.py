"""Face detectors: image in, boxes + 5 landmarks (InsightFace order) + scores out.

Landmark order everywhere in the engine is InsightFace's `arcface_dst` order: the eye on the
viewer's left, the eye on the viewer's right, nose tip, the mouth corner on the viewer's left,
the one on the viewer's right. YuNet emits (subject's) right eye, left eye, nose, right mouth
corner, left mouth corner, which is the same thing seen from the camera.

RetinaFace (the default pack's detector) lives in `engine.retinaface`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np


@dataclass(frozen=True, eq=False)
class DetectedFace:
    bbox: tuple[float, float, float, float]  # x, y, width, height in the input image's pixels
    landmarks: np.ndarray  # (5, 2) float32, InsightFace order
    score: float

    @property
    def area(self) -> float:
        return self.bbox[2] * self.bbox[3]


class Detector(Protocol):
    def detect(self, bgr: np.ndarray) -> list[DetectedFace]: ...


def fit_scale(width: int, height: int, max_side: int) -> float:
    longest = max(width, height)
    return min(1.0, max_side / longest) if longest > 0 else 1.0


def clip_face(face: DetectedFace, width: int, height: int) -> DetectedFace:
    x, y, w, h = face.bbox
    x0, y0 = max(0.0, x), max(0.0, y)
    x1, y1 = min(float(width), x + w), min(float(height), y + h)
    return DetectedFace((x0, y0, max(0.0, x1 - x0), max(0.0, y1 - y0)), face.landmarks, face.score)


def create_yunet(
    model_path: Path, *, score_threshold: float, nms_threshold: float = 0.3, top_k: int = 5000
) -> Any:
    """The cv2 object; kept out of YuNetDetector so tests can hand it a stand-in."""
    return cv2.FaceDetectorYN.create(str(model_path), "", (320, 320), score_threshold, nms_threshold, top_k)


class YuNetDetector:
    """`cv2.FaceDetectorYN` with input resizing and coordinates mapped back.

    The cv2 object keeps the input size as state, so calls are serialised with a lock; one
    detector can be shared by threads but detects one image at a time.
    """

    def __init__(self, yunet: Any, *, max_side: int) -> None:
        self._yunet = yunet
        self._max_side = max_side
        self._lock = threading.Lock()

    def _run(self, bgr: np.ndarray) -> np.ndarray:
        height, width = bgr.shape[:2]
        with self._lock:
            self._yunet.setInputSize((width, height))
            _, faces = self._yunet.detect(bgr)
        return np.zeros((0, 15), np.float32) if faces is None else np.asarray(faces, np.float32)

    def detect(self, bgr: np.ndarray) -> list[DetectedFace]:
        height, width = bgr.shape[:2]
        if width < 2 or height < 2:
            return []
        # Only ever downscale: measured on the sample set, YuNet still finds a face 17 px wide
        # in a 30x47 image, so small images gain nothing from upsampling or padding.
        scale = fit_scale(width, height, self._max_side)
        if scale != 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
            work = cv2.resize(bgr, size, interpolation=interp)
            sx, sy = width / size[0], height / size[1]
        else:
            work, sx, sy = bgr, 1.0, 1.0
        rows = self._run(work)
        faces = []
        for row in rows:
            bbox = (row[0] * sx, row[1] * sy, row[2] * sx, row[3] * sy)
            landmarks = (row[4:14].reshape(5, 2) * np.array([sx, sy], np.float32)).astype(np.float32)
            face = DetectedFace(tuple(float(v) for v in bbox), landmarks, float(row[14]))  # type: ignore[arg-type]
            faces.append(clip_face(face, width, height))
        return [f for f in faces if f.bbox[2] > 0 and f.bbox[3] > 0]


class ScrfdDetector:
    """InsightFace's SCRFD (the buffalo/antelope packs) behind the same interface.

    `scrfd` is an `insightface.model_zoo.scrfd.SCRFD` built around an injected session; it
    letterboxes the image into max_side x max_side itself and returns corner boxes.
    """

    def __init__(self, scrfd: Any, *, max_side: int, score_threshold: float) -> None:
        self._model = scrfd
        self._size = (max_side, max_side)
        self._threshold = score_threshold
        self._lock = threading.Lock()

    def _raw(self, bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        return self._model.detect(bgr, input_size=self._size, det_thresh=self._threshold)  # type: ignore[no-any-return]

    def detect(self, bgr: np.ndarray) -> list[DetectedFace]:
        height, width = bgr.shape[:2]
        if width < 2 or height < 2:
            return []
        with self._lock:
            boxes, kpss = self._raw(bgr)
        if kpss is None:
            # A detector without landmarks cannot feed 5-point alignment: refuse it loudly.
            raise ValueError("this detector model outputs no landmarks; 5-point alignment needs them")
        faces = []
        for i, (x0, y0, x1, y1, score) in enumerate(np.asarray(boxes, np.float32).reshape(-1, 5)):
            landmarks = np.asarray(kpss[i], np.float32).reshape(5, 2)
            bbox = (float(x0), float(y0), float(x1 - x0), float(y1 - y0))
            faces.append(clip_face(DetectedFace(bbox, landmarks, float(score)), width, height))
        return [f for f in faces if f.bbox[2] > 0 and f.bbox[3] > 0]
