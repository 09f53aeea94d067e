"""Synthesised re-captures ("a photo of a photo or a screen") for the liveness experiment.

Each function maps a BGR photo to a BGR image that looks re-photographed in one way. They are
crude stand-ins for real presentation attacks: good enough to ask whether a liveness model
reacts to re-capture cues at all, never to claim it resists real attacks.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np


def moire(bgr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Two slightly rotated fine gratings beating against each other (screen pixel grid)."""
    h, w = bgr.shape[:2]
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    period = max(3.0, min(h, w) / 180.0)
    angle = rng.uniform(0.05, 0.2)
    a = np.sin(2 * np.pi * xx / period)
    b = np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / (period * 1.05))
    pattern = 1.0 + 0.18 * (a * b)
    return np.clip(bgr.astype(np.float32) * pattern[:, :, None], 0, 255).astype(np.uint8)


def glare(bgr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A soft specular highlight and the contrast loss of a glossy surface."""
    h, w = bgr.shape[:2]
    cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.1, 0.5) * h
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    sigma = 0.25 * min(h, w)
    blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
    out = bgr.astype(np.float32) * 0.85 + 30 + 160 * blob[:, :, None]
    return np.clip(out, 0, 255).astype(np.uint8)


def jpeg_recompress(bgr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Downscale, encode at JPEG quality 8-15, decode and scale back (a forwarded photo)."""
    h, w = bgr.shape[:2]
    small = cv2.resize(bgr, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)
    quality = int(rng.integers(8, 16))
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.resize(cv2.imdecode(buf, cv2.IMREAD_COLOR), (w, h), interpolation=cv2.INTER_LINEAR)


def perspective_border(bgr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The photo as a print or phone held in front of the camera: a border, a tilt, a background."""
    h, w = bgr.shape[:2]
    border = max(4, min(h, w) // 25)
    framed = cv2.copyMakeBorder(bgr, border, border, border, border, cv2.BORDER_CONSTANT, value=(20, 20, 20))
    fh, fw = framed.shape[:2]
    pad = 0.25
    out_w, out_h = int(fw * (1 + 2 * pad)), int(fh * (1 + 2 * pad))
    src = np.float32([[0, 0], [fw, 0], [fw, fh], [0, fh]])
    jitter = rng.uniform(-0.06, 0.06, (4, 2)) * [fw, fh]
    dst = (src + np.float32([fw * pad, fh * pad]) + jitter).astype(np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst)
    background = np.full((out_h, out_w, 3), rng.integers(90, 170, 3), np.uint8)
    return cv2.warpPerspective(
        framed, matrix, (out_w, out_h), dst=background, borderMode=cv2.BORDER_TRANSPARENT
    )


def colour_cast(bgr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A screen's blue-white cast, lifted blacks and flattened contrast."""
    gain = np.array([1.15, 1.0, 0.82], np.float32) * rng.uniform(0.95, 1.05)
    out = (bgr.astype(np.float32) * 0.75 + 45) * gain
    return np.clip(out, 0, 255).astype(np.uint8)


def recapture(bgr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Everything at once: screen cast, moire, glare, a tilted frame, low-quality JPEG."""
    out = colour_cast(bgr, rng)
    out = moire(out, rng)
    out = glare(out, rng)
    out = perspective_border(out, rng)
    return jpeg_recompress(out, rng)


ATTACKS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "moire": moire,
    "glare": glare,
    "jpeg_q8_15": jpeg_recompress,
    "perspective_border": perspective_border,
    "colour_cast": colour_cast,
    "recapture_all": recapture,
}
