"""The real engine: bytes -> decode -> detect -> policy -> align + quality gate -> liveness gate;
crops -> embeddings.

`prepare` scores every face with the image heuristic (`quality_factors`, which name the reason
for a low score); `embed_scored` returns each face's final quality, from the recognizer's
embedding norm when the pack calibrates one. The quality bar of the caller's filter is applied
after embedding, by `engine.gate`. A face whose spoof score is above `liveness_threshold` raises
SPOOF_SUSPECTED; under the "all" policy such faces are dropped and the error is raised only when
none is left.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence

import numpy as np

from core.errors import ErrorCode, FacestreamError
from engine.crop import aligned_crop
from engine.decode import DecodeLimits, decode_image
from engine.detector import DetectedFace, Detector
from engine.liveness import DEFAULT_LIVENESS_THRESHOLD, LivenessCheck, NoLiveness
from engine.policy import POLICIES, select_faces
from engine.quality import QualityScorer, norm_quality
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
        liveness: LivenessCheck | None = None,
        liveness_threshold: float = DEFAULT_LIVENESS_THRESHOLD,
        quality_norm: tuple[float, float] | None = None,
    ) -> None:
        if multi_face_policy not in POLICIES:
            raise ValueError(f"unknown multi-face policy {multi_face_policy!r}")
        self._detector = detector
        self._recognizer = recognizer
        self._quality = quality
        self._limits = limits
        self._policy = multi_face_policy
        self._liveness: LivenessCheck = liveness or NoLiveness()
        self._liveness_threshold = liveness_threshold
        self._quality_norm = quality_norm
        self.model: ModelInfo = recognizer.model_info

    @property
    def limits(self) -> DecodeLimits:
        return self._limits

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
        faces: list[PreparedFace] = []
        rejections: list[FacestreamError] = []  # liveness only
        for face in chosen:
            crop = aligned_crop(decoded, face.landmarks)  # finer decode if the face needs it
            x, y, w, h = (v * back for v in face.bbox)
            report = self._quality.assess(
                crop, landmarks=face.landmarks, det_score=face.score, face_size=min(w, h)
            )
            faces.append(
                PreparedFace(
                    crop=crop,
                    bbox=BBox(x=x, y=y, width=w, height=h),
                    landmarks=(face.landmarks * back).astype(np.float32),
                    det_score=face.score,
                    quality=report.score,
                    quality_factors=report.factors,
                    quality_reason=report.explain(),
                )
            )
        align_ms = _ms(start)
        timings = {"decode_ms": decode_ms, "detect_ms": detect_ms, "align_ms": align_ms}

        if not isinstance(self._liveness, NoLiveness) and faces:
            start = time.perf_counter()
            live = []
            for prepared in faces:
                score = self._liveness.spoof_score(decoded.bgr, _decoded_bbox(prepared, decoded.scale))
                if score > self._liveness_threshold:
                    rejections.append(
                        FacestreamError(
                            ErrorCode.SPOOF_SUSPECTED,
                            f"{self._liveness.name} liveness: spoof score {score:.2f} is above "
                            f"{self._liveness_threshold:.2f}",
                        )
                    )
                else:
                    live.append(prepared)
            faces = live
            timings["liveness_ms"] = _ms(start)
        if not faces:
            raise rejections[0]
        return PreparedImage(
            faces=faces,
            face_count=len(detected),
            content_hash=content_hash,
            timings=timings,
            format=decoded.format,
            size=decoded.original_size,
        )

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(n, dim) float32, each row L2-normalised; crops are micro-batched."""
        return self._recognizer.embed(crops)

    def embed_scored(self, crops: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """Embeddings and, when the pack calibrates its recognizer's norm, each face's quality
        from it (None: the image heuristic from `prepare` stands)."""
        raw = self._recognizer.features(crops)
        norms = np.linalg.norm(raw, axis=1)
        vectors = (raw / np.maximum(norms, 1e-12)[:, None]).astype(np.float32)
        if self._quality_norm is None:
            return vectors, None
        return vectors, norm_quality(norms, self._quality_norm)

    def features(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """The recognizer's output before L2 normalisation (for quality studies)."""
        return self._recognizer.features(crops)


def _decoded_bbox(face: PreparedFace, scale: float) -> tuple[float, float, float, float]:
    """The face's box in the decoded (possibly drafted) image's pixels."""
    b = face.bbox
    return (b.x * scale, b.y * scale, b.width * scale, b.height * scale)
