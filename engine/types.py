"""What an engine hands back, and the interface both the real and the fake engine implement."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from schemas.events import BBox, ModelInfo


@dataclass(frozen=True, eq=False)
class PreparedFace:
    crop: np.ndarray  # 112x112x3 uint8 BGR, aligned to InsightFace's template
    bbox: BBox  # original-image pixels, EXIF orientation applied
    landmarks: np.ndarray  # (5, 2) float32, original-image pixels, InsightFace order
    det_score: float
    quality: float  # [0, 1]: the image heuristic after `prepare`, the final score after the gate
    # The image heuristic's factors (detection, size, sharpness, pose), each in [0, 1], and the
    # sentence naming the weakest: why a face scores low, whichever signal scored it.
    quality_factors: dict[str, float] = field(default_factory=dict)
    quality_reason: str = ""


@dataclass(frozen=True, eq=False)
class PreparedImage:
    faces: list[PreparedFace]  # already chosen by the multi-face policy; never empty
    face_count: int  # faces detected before the policy chose
    content_hash: str  # sha256 hex of the input bytes
    timings: dict[str, float] = field(default_factory=dict)  # decode_ms, detect_ms, align_ms
    format: str = ""
    size: tuple[int, int] = (0, 0)  # (width, height) of the oriented original


class Engine(Protocol):
    """`prepare` and `embed` are blocking CPU work: call them from a worker thread."""

    model: ModelInfo

    def prepare(self, image: bytes) -> PreparedImage:
        """Decode, detect, align and score with the image heuristic; refuses nothing for quality
        (the caller's bar is applied after embedding, by `engine.gate.apply_bar`)."""
        ...

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray: ...

    def embed_scored(self, crops: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """Embeddings, and each face's final quality when the engine derives it from the
        embedding (None: the heuristic from `prepare` stands)."""
        ...
