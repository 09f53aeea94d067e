"""RetinaFace (Deng et al., CVPR 2020) as exported by biubug6/Pytorch_Retinaface: one onnxruntime
session in, boxes + 5 landmarks (InsightFace order) + scores out.

The graph takes a BGR image minus the channel means (104, 117, 123), NCHW float32, any size,
and returns for every prior: `loc` (box offsets), `conf` (softmax [background, face]) and
`landmarks` (5 point offsets). Priors: strides 8, 16, 32 with square anchors of 16/32, 64/128
and 256/512 px, row-major over the feature map, both sizes per cell; offsets are decoded with
variances (0.1, 0.2) as in the original `box_utils.decode`. The landmark order is the WIDER FACE
annotation's: the eye on the viewer's left first, then the right eye, nose, left and right mouth
corner, which is InsightFace's `arcface_dst` order.
"""

from __future__ import annotations

import math
import threading
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from engine.detector import DetectedFace, clip_face, fit_scale

STRIDES = (8, 16, 32)
ANCHORS = ((16, 32), (64, 128), (256, 512))
VARIANCE = (0.1, 0.2)
MEAN_BGR = np.array([104.0, 117.0, 123.0], np.float32)
# Images smaller than this are padded (never upscaled) so every stride sees a whole cell and
# a face filling a tiny crop still sits inside a prior's reach.
MIN_INPUT_SIDE = 64


@lru_cache(maxsize=16)
def priors(height: int, width: int) -> np.ndarray:
    """(n, 4) centre-x, centre-y, width, height in input pixels, in the graph's output order."""
    parts = []
    for stride, sizes in zip(STRIDES, ANCHORS, strict=True):
        rows, cols = math.ceil(height / stride), math.ceil(width / stride)
        ys, xs = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        centres = np.stack([(xs.ravel() + 0.5) * stride, (ys.ravel() + 0.5) * stride], axis=1)
        for_cell = [np.column_stack([centres, np.full((len(centres), 2), s, np.float64)]) for s in sizes]
        parts.append(np.stack(for_cell, axis=1).reshape(-1, 4))  # both sizes per cell, in order
    return np.concatenate(parts).astype(np.float32)


def decode(loc: np.ndarray, landmarks: np.ndarray, anchors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(boxes (n, 4) as x, y, w, h; points (n, 5, 2)) in input pixels."""
    centre, size = anchors[:, :2], anchors[:, 2:]
    box_centre = centre + loc[:, :2] * VARIANCE[0] * size
    box_size = size * np.exp(loc[:, 2:] * VARIANCE[1])
    boxes = np.concatenate([box_centre - box_size / 2, box_size], axis=1)
    points = centre[:, None, :] + landmarks.reshape(-1, 5, 2) * VARIANCE[0] * size[:, None, :]
    return boxes, points


def preprocess(bgr: np.ndarray) -> np.ndarray:
    """A (1, 3, H, W) float32 tensor: BGR minus the training means."""
    return np.ascontiguousarray((bgr.astype(np.float32) - MEAN_BGR).transpose(2, 0, 1)[None])


class RetinaFaceDetector:
    """RetinaFace on an injected onnxruntime session; downscale-only to `max_side`, small images
    padded to `MIN_INPUT_SIDE`, NMS at `nms_threshold`. The session's `run` is thread-safe, so no
    lock is needed; the lock only keeps the prior cache from being filled twice at once."""

    def __init__(
        self, session: Any, *, max_side: int, score_threshold: float, nms_threshold: float = 0.4
    ) -> None:
        self._session = session
        self._input = session.get_inputs()[0].name
        self._max_side = max_side
        self._threshold = score_threshold
        self._nms = nms_threshold
        self._lock = threading.Lock()

    def _work_image(self, bgr: np.ndarray) -> tuple[np.ndarray, float]:
        height, width = bgr.shape[:2]
        scale = fit_scale(width, height, self._max_side)
        work = bgr
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            work = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
        h, w = work.shape[:2]
        if h < MIN_INPUT_SIDE or w < MIN_INPUT_SIDE:
            pad_b, pad_r = max(0, MIN_INPUT_SIDE - h), max(0, MIN_INPUT_SIDE - w)
            work = cv2.copyMakeBorder(work, 0, pad_b, 0, pad_r, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        return work, (width / max(1, round(width * scale)) if scale < 1.0 else 1.0)

    def detect(self, bgr: np.ndarray) -> list[DetectedFace]:
        height, width = bgr.shape[:2]
        if width < 2 or height < 2:
            return []
        if bgr.ndim == 2:
            bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
        work, back = self._work_image(bgr)
        loc, conf, marks = self._session.run(None, {self._input: preprocess(work)})
        with self._lock:
            anchors = priors(*work.shape[:2])
        scores = np.asarray(conf[0], np.float32)[:, 1]
        keep = np.flatnonzero(scores >= self._threshold)
        if keep.size == 0:
            return []
        boxes, points = decode(np.asarray(loc[0])[keep], np.asarray(marks[0])[keep], anchors[keep])
        chosen = cv2.dnn.NMSBoxes(boxes.tolist(), scores[keep].tolist(), self._threshold, self._nms)
        faces = []
        for i in np.asarray(chosen, np.int64).reshape(-1):
            bbox = tuple(float(v) * back for v in boxes[i])
            face = DetectedFace(bbox, (points[i] * back).astype(np.float32), float(scores[keep][i]))  # type: ignore[arg-type]
            faces.append(clip_face(face, width, height))
        return [f for f in faces if f.bbox[2] > 0 and f.bbox[3] > 0]
