"""A deterministic FAKE engine for hermetic tests of other packages. Never use it in production.

Input bytes (anything else is undecodable_image):
    b"FAKE:<identity>:<variant>"            one face of <identity>; quality 0.9
    b"FAKE:<identity>:<variant>:<quality>"  the same with a chosen quality in [0, 1]
    b"FAKE-NOFACE"                          no_face
    b"FAKE-MULTI"                           two faces (identities "multi-a", larger, and "multi-b")

Embeddings: a unit vector seeded by sha256(identity) plus 0.25x a unit vector seeded by the
variant, renormalised. Same identity: cosine ~0.94; different identities: |cosine| < 0.3.
The identity and variant travel inside the fake crop's first 64 bytes, so `embed` stays a
function of the crops, as in the real engine.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from core.errors import ErrorCode, FacestreamError
from engine.policy import POLICIES, select_faces
from engine.types import PreparedFace, PreparedImage
from schemas.events import BBox, ModelInfo

_NOISE = 0.25
_LANDMARKS = np.array([[38.3, 51.7], [73.5, 51.5], [56.0, 71.7], [41.5, 92.4], [70.7, 92.2]])


def _unit(seed: bytes, dim: int) -> np.ndarray:
    rng = np.random.default_rng(np.frombuffer(seed, dtype=np.uint32))
    v = rng.standard_normal(dim)
    return v / np.linalg.norm(v)


def _face(identity: str, variant: str, quality: float, size: float) -> PreparedFace:
    crop = np.zeros((112, 112, 3), np.uint8)
    seed = hashlib.sha256(identity.encode()).digest() + hashlib.sha256(variant.encode()).digest()
    crop.reshape(-1)[:64] = np.frombuffer(seed, np.uint8)
    return PreparedFace(
        crop=crop,
        bbox=BBox(x=10.0, y=10.0, width=size, height=size),
        landmarks=(_LANDMARKS * size / 112 + 10).astype(np.float32),
        det_score=0.99,
        quality=quality,
    )


class DeterministicFakeEngine:
    def __init__(self, *, multi_face_policy: str = "largest", dim: int = 512) -> None:
        if multi_face_policy not in POLICIES:
            raise ValueError(f"unknown multi-face policy {multi_face_policy!r}")
        self._policy = multi_face_policy
        self.model = ModelInfo(pack="fake", recognizer="fake", version="1", dim=dim)

    def _faces(self, image: bytes) -> list[PreparedFace]:
        if image == b"FAKE-NOFACE":
            return []
        if image == b"FAKE-MULTI":
            return [_face("multi-a", "0", 0.9, 200.0), _face("multi-b", "0", 0.9, 100.0)]
        parts = image.decode("utf-8", "replace").split(":")
        if parts[0] != "FAKE" or len(parts) not in (3, 4) or not parts[1]:
            raise FacestreamError(ErrorCode.UNDECODABLE_IMAGE, "not a FAKE test image")
        try:
            quality = float(parts[3]) if len(parts) == 4 else 0.9
        except ValueError:
            raise FacestreamError(ErrorCode.UNDECODABLE_IMAGE, "bad FAKE quality") from None
        return [_face(parts[1], parts[2], quality, 150.0)]

    def prepare(self, image: bytes) -> PreparedImage:
        faces = self._faces(image)
        chosen = select_faces(
            faces,
            self._policy,
            area=[f.bbox.width * f.bbox.height for f in faces],
            score=[f.det_score for f in faces],
        )
        return PreparedImage(
            faces=chosen,
            face_count=len(faces),
            content_hash=hashlib.sha256(image).hexdigest(),
            timings={"decode_ms": 0.0, "detect_ms": 0.0, "align_ms": 0.0},
            format="FAKE",
            size=(320, 320),
        )

    def embed_scored(self, crops: Sequence[np.ndarray]) -> tuple[np.ndarray, None]:
        return self.embed(crops), None  # the quality chosen in the FAKE bytes stands

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(crops), self.model.dim), np.float32)
        for i, crop in enumerate(crops):
            seed = np.asarray(crop).reshape(-1)[:64].tobytes()
            v = _unit(seed[:32], self.model.dim) + _NOISE * _unit(seed[32:], self.model.dim)
            out[i] = v / np.linalg.norm(v)
        return out
