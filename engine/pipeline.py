"""The real engine: bytes -> decode -> detect -> policy -> align + quality; crops -> embeddings."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence

import numpy as np

from engine.align import align
from engine.decode import DecodeLimits, decode_image
from engine.detector import DetectedFace, Detector
from engine.policy import POLICIES, select_faces
from engine.quality import QualityScorer
from engine.recognizer import Recognizer
from engine.types import PreparedFace, PreparedImage
from schemas.events import BBox, ModelInfo


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


class FaceEngine:
    """Stateless per call apart from the detector, which serialises its own calls with a lock:
    `prepare` may be called from several threads, but detections run one at a time per engine.
    `embed` goes straight to onnxruntime, whose `run` is thread-safe.
    """

    def __init__(
        self,
        *,
        detector: Detector,
        recognizer: Recognizer,
        quality: QualityScorer,
        limits: DecodeLimits,
        multi_face_policy: str = "largest",
    ) -> None:
        if multi_face_policy not in POLICIES:
            raise ValueError(f"unknown multi-face policy {multi_face_policy!r}")
        self._detector = detector
        self._recognizer = recognizer
        self._quality = quality
        self._limits = limits
        self._policy = multi_face_policy
        self.model: ModelInfo = recognizer.model_info

    def prepare(self, image: bytes) -> PreparedImage:
        content_hash = hashlib.sha256(image).hexdigest()
        start = time.perf_counter()
        decoded = decode_image(image, self._limits)
        decode_ms = _ms(start)

        start = time.perf_counter()
        detected = self._detector.detect(decoded.bgr)
        chosen: list[DetectedFace] = select_faces(
            detected,
            self._policy,
            area=[f.area for f in detected],
            score=[f.score for f in detected],
        )
        detect_ms = _ms(start)

        start = time.perf_counter()
        back = 1.0 / decoded.scale  # decoded pixels -> original pixels
        faces = []
        for face in chosen:
            crop = align(decoded.bgr, face.landmarks)
            x, y, w, h = (v * back for v in face.bbox)
            faces.append(
                PreparedFace(
                    crop=crop,
                    bbox=BBox(x=x, y=y, width=w, height=h),
                    landmarks=(face.landmarks * back).astype(np.float32),
                    det_score=face.score,
                    quality=self._quality.score(crop, det_score=face.score, face_size=min(w, h)),
                )
            )
        align_ms = _ms(start)
        return PreparedImage(
            faces=faces,
            face_count=len(detected),
            content_hash=content_hash,
            timings={"decode_ms": decode_ms, "detect_ms": detect_ms, "align_ms": align_ms},
            format=decoded.format,
            size=decoded.original_size,
        )

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(n, dim) float32, each row L2-normalised; crops are micro-batched."""
        return self._recognizer.embed(crops)
