"""Liveness / presentation-attack detection behind one interface, off by default.

`LivenessCheck.spoof_score` looks at the face in its source image (context around the box
matters: screen borders, paper edges, moire) and answers a probability-like spoof score in
[0, 1]; the pipeline compares it with `liveness_threshold` and raises SPOOF_SUSPECTED above it.

`FacepluginLiveness` adapts the default pack's `fr_liveness.onnx` (128x128, 3 classes), with
the crop of the package's own JavaScript (`lib/fr_liveness.js`): the box scaled 2.7x around its
centre (shifted to stay inside the image), resized to 128x128, raw 0-255 values, softmax over
the 3 outputs. Two things were measured, not assumed (docs/engine.md, "Liveness"): output 0 is
"live", and channels in B, G, R order (OpenCV's, as in Silent-Face-Anti-Spoofing, which this
model resembles) flag 0 of 61 real sample photos where the JavaScript's R, G, B order flags 13.
The model separates a combined synthetic re-capture well but single cues poorly, so the adapter
stays disabled unless `liveness=faceplugin` is set, and its threshold must be calibrated on
the deployment's own bona fide and attack images first.
"""

from __future__ import annotations

from typing import Any, Protocol

import cv2
import numpy as np

LIVENESS_INPUT = 128
CONTEXT_SCALE = 2.7
DEFAULT_LIVENESS_THRESHOLD = 0.5
# Measured on ../shared/faces vs synthesised re-captures (docs/engine.md): class 0 is "live"
# (the package's JavaScript also reports softmax[0] as its liveness score), class 1 rises on
# re-captures, class 2 stayed < 0.01 on everything tried.
FACEPLUGIN_LIVE_CLASS = 0

BBox = tuple[float, float, float, float]  # x, y, width, height in the given image's pixels


class LivenessCheck(Protocol):
    name: str

    def spoof_score(self, bgr: np.ndarray, bbox: BBox) -> float:
        """Probability-like score in [0, 1] that the face in `bbox` is a presentation attack."""
        ...


class NoLiveness:
    """The default: every face is taken as live (score 0). Deployments that need
    anti-spoofing plug in a model here (docs/engine.md lists the options)."""

    name = "none"

    def spoof_score(self, bgr: np.ndarray, bbox: BBox) -> float:
        return 0.0


def context_crop(
    bgr: np.ndarray, bbox: BBox, *, scale: float = CONTEXT_SCALE, size: int = LIVENESS_INPUT
) -> np.ndarray:
    """The face box grown `scale`x around its centre (less when the image is too small),
    shifted to stay inside the image, resized to size x size: Silent-Face / faceplugin style."""
    height, width = bgr.shape[:2]
    x, y, w, h = (float(v) for v in bbox)
    w, h = max(w, 1.0), max(h, 1.0)
    s = min((height - 1) / h, (width - 1) / w, scale)
    s = max(s, 1e-3)
    new_w, new_h = w * s, h * s
    cx, cy = x + w / 2, y + h / 2
    x0, y0, x1, y1 = cx - new_w / 2, cy - new_h / 2, cx + new_w / 2, cy + new_h / 2
    if x0 < 0:
        x1, x0 = x1 - x0, 0.0
    if y0 < 0:
        y1, y0 = y1 - y0, 0.0
    if x1 > width - 1:
        x0, x1 = x0 - (x1 - width + 1), float(width - 1)
    if y1 > height - 1:
        y0, y1 = y0 - (y1 - height + 1), float(height - 1)
    left, top = max(int(x0), 0), max(int(y0), 0)
    right, bottom = max(int(x1), left + 1), max(int(y1), top + 1)
    roi = bgr[top : bottom + 1, left : right + 1]
    return cv2.resize(roi, (size, size), interpolation=cv2.INTER_LINEAR)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class FacepluginLiveness:
    """`fr_liveness.onnx` on an injected onnxruntime session (input "input", 1x3x128x128)."""

    name = "faceplugin"

    def __init__(self, session: Any, *, live_class: int = FACEPLUGIN_LIVE_CLASS) -> None:
        inputs = session.get_inputs()
        outputs = session.get_outputs()
        if len(inputs) != 1 or list(inputs[0].shape[1:]) != [3, LIVENESS_INPUT, LIVENESS_INPUT]:
            raise ValueError(f"expected one 3x{LIVENESS_INPUT}x{LIVENESS_INPUT} input, got {inputs}")
        if outputs[0].shape[-1] != 3:
            raise ValueError(f"expected 3 output classes, got shape {outputs[0].shape}")
        self._session = session
        self._input = inputs[0].name
        self._live_class = live_class

    def probabilities(self, bgr: np.ndarray, bbox: BBox) -> np.ndarray:
        """Softmax over the model's 3 classes for one face (for experiments and diagnostics)."""
        crop = context_crop(bgr, bbox)
        blob = crop.transpose(2, 0, 1)[None].astype(np.float32)  # BGR, 0-255, NCHW
        (logits,) = self._session.run(None, {self._input: np.ascontiguousarray(blob)})
        return _softmax(np.asarray(logits, np.float64).reshape(1, -1))[0]

    def spoof_score(self, bgr: np.ndarray, bbox: BBox) -> float:
        return float(1.0 - self.probabilities(bgr, bbox)[self._live_class])
