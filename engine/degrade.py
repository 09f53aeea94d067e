"""Degraded copies of a photo, for measuring detectors and calibrating quality bars.

Each variant is encoded bytes (the whole pipeline, decoding included, sees it as a client would
send it). `face_width` is the width in pixels of the face in the original, from a detection on
the clean photo; sizes and blur are relative to it so that every photo is degraded alike.

    down64 / down48 / down32   the whole photo scaled so the face is 64 / 48 / 32 px wide
    grey                       greyscale (one channel), JPEG q95
    jpeg20                     re-encoded at JPEG quality 20
    blur                       Gaussian blur, sigma = face width / 40
    rot30                      rotated 30 degrees in plane (canvas grown, corners black)

`EXTREME` variants go past what a recognizer can use (a 16 px face, blur at sigma = face width
/ 10): quality calibration needs faces on both sides of every bar.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

VARIANTS: tuple[str, ...] = ("down64", "down48", "down32", "grey", "jpeg20", "blur", "rot30")
EXTREME: tuple[str, ...] = ("down16", "blur10")


def _jpeg(image: np.ndarray, quality: int = 95) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()


def _png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise ValueError("PNG encoding failed")
    return data.tobytes()


def downscaled(bgr: np.ndarray, face_width: float, target: int) -> bytes:
    scale = min(1.0, target / max(face_width, 1.0))
    h, w = bgr.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return _png(cv2.resize(bgr, size, interpolation=cv2.INTER_AREA))


def rotated(bgr: np.ndarray, degrees: float) -> bytes:
    h, w = bgr.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    nw, nh = int(h * sin + w * cos), int(h * cos + w * sin)
    matrix[0, 2] += nw / 2 - w / 2
    matrix[1, 2] += nh / 2 - h / 2
    return _jpeg(cv2.warpAffine(bgr, matrix, (nw, nh)))


_MAKERS: dict[str, Callable[[np.ndarray, float], bytes]] = {
    "down64": lambda bgr, fw: downscaled(bgr, fw, 64),
    "down48": lambda bgr, fw: downscaled(bgr, fw, 48),
    "down32": lambda bgr, fw: downscaled(bgr, fw, 32),
    "down16": lambda bgr, fw: downscaled(bgr, fw, 16),
    "grey": lambda bgr, fw: _jpeg(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)),
    "jpeg20": lambda bgr, fw: _jpeg(bgr, 20),
    "blur": lambda bgr, fw: _jpeg(cv2.GaussianBlur(bgr, (0, 0), max(0.5, fw / 40))),
    "blur10": lambda bgr, fw: _jpeg(cv2.GaussianBlur(bgr, (0, 0), max(0.5, fw / 10))),
    "rot30": lambda bgr, fw: rotated(bgr, 30.0),
}


def degrade(bgr: np.ndarray, variant: str, *, face_width: float) -> bytes:
    """One degraded copy of `bgr` (a decoded BGR photo) as encoded bytes."""
    try:
        maker = _MAKERS[variant]
    except KeyError:
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(_MAKERS)}") from None
    return maker(bgr, face_width)
