from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence

import numpy as np
import pytest
from PIL import Image

from core.errors import ErrorCode, FacestreamError
from engine.decode import DecodeLimits
from engine.detector import DetectedFace
from engine.gate import apply_bar, scored
from engine.pipeline import FaceEngine
from engine.quality import DEFAULT_QUALITY_MIN, DefaultQuality, QualityReport
from schemas.events import ModelInfo
from tests.unit.engine.images import encode, gradient

# engine.align silences this at import; pytest re-arms warnings per test.
pytestmark = pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")

INFO = ModelInfo(pack="stub", recognizer="stub", version="1", dim=4)


def _face(x: float, y: float, size: float, score: float) -> DetectedFace:
    template = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]])
    landmarks = (template * size + [x, y]).astype(np.float32)
    return DetectedFace((x, y, size, size), landmarks, score)


class StubDetector:
    def __init__(self, faces: list[DetectedFace]) -> None:
        self.faces = faces
        self.shapes: list[tuple[int, ...]] = []

    def detect(self, bgr: np.ndarray) -> list[DetectedFace]:
        self.shapes.append(bgr.shape)
        return self.faces


class StubRecognizer:
    """Embeds every crop as the same vector, of norm 3 before normalisation."""

    model_info = INFO

    def features(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        return np.full((len(crops), 4), 1.5, np.float32)

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        return np.ones((len(crops), 4), np.float32) / 2


def _engine(faces: list[DetectedFace], policy: str = "largest", draft: int = 0) -> FaceEngine:
    return FaceEngine(
        detector=StubDetector(faces),
        recognizer=StubRecognizer(),
        quality=DefaultQuality(),
        limits=DecodeLimits(max_bytes=10**7, max_pixels=10**8, draft_min_side=draft),
        multi_face_policy=policy,
    )


def test_prepare_returns_aligned_crop_hash_and_timings() -> None:
    image = encode(gradient(320, 240), "PNG")
    prepared = _engine([_face(50, 40, 100, 0.9)]).prepare(image)
    assert prepared.content_hash == hashlib.sha256(image).hexdigest()
    assert prepared.face_count == 1
    assert set(prepared.timings) == {"decode_ms", "detect_ms", "align_ms"}
    assert all(v >= 0 for v in prepared.timings.values())
    assert prepared.format == "PNG" and prepared.size == (320, 240)
    (face,) = prepared.faces
    assert face.crop.shape == (112, 112, 3) and face.crop.dtype == np.uint8
    assert (face.bbox.x, face.bbox.y, face.bbox.width, face.bbox.height) == (50, 40, 100, 100)
    assert face.det_score == 0.9
    assert 0.0 <= face.quality <= 1.0


def test_policy_and_face_count() -> None:
    faces = [_face(0, 0, 50, 0.99), _face(100, 100, 120, 0.7)]
    image = encode(gradient(320, 240), "PNG")
    prepared = _engine(faces).prepare(image)
    assert prepared.face_count == 2
    assert [f.bbox.width for f in prepared.faces] == [120]
    assert [f.det_score for f in _engine(faces, "best_score").prepare(image).faces] == [0.99]
    assert len(_engine(faces, "all").prepare(image).faces) == 2
    with pytest.raises(FacestreamError) as info:
        _engine(faces, "reject").prepare(image)
    assert info.value.code == ErrorCode.MULTIPLE_FACES


def test_no_face_and_bad_bytes() -> None:
    with pytest.raises(FacestreamError) as info:
        _engine([]).prepare(encode(gradient(), "PNG"))
    assert info.value.code == ErrorCode.NO_FACE
    with pytest.raises(FacestreamError) as info:
        _engine([_face(0, 0, 10, 0.9)]).prepare(b"not an image")
    assert info.value.code == ErrorCode.UNDECODABLE_IMAGE


def test_drafted_jpeg_boxes_come_back_in_original_pixels() -> None:
    engine = _engine([_face(100, 50, 100, 0.9)], draft=400)
    prepared = engine.prepare(encode(gradient(1600, 1200), "JPEG"))
    assert engine._detector.shapes == [(300, 400, 3)]  # type: ignore[attr-defined]
    (face,) = prepared.faces
    assert (face.bbox.x, face.bbox.y, face.bbox.width) == (400, 200, 400)
    np.testing.assert_allclose(face.landmarks[0], [(100 + 30) * 4, (50 + 40) * 4])
    assert prepared.size == (1600, 1200)


def test_embed_and_model() -> None:
    engine = _engine([])
    assert engine.model == INFO
    assert engine.embed([np.zeros((112, 112, 3), np.uint8)] * 3).shape == (3, 4)


def test_unknown_policy_fails_at_construction() -> None:
    with pytest.raises(ValueError):
        _engine([], "random")


class StubQuality:
    """Scores faces by their detector score alone, so a test picks quality via the stub box."""

    def assess(self, crop, *, landmarks, det_score, face_size) -> QualityReport:
        factors = {"detection": 1.0, "size": 1.0, "sharpness": det_score, "pose": 1.0}
        return QualityReport(score=det_score, factors=factors, yaw_deg=0.0, roll_deg=0.0)


class StubLiveness:
    name = "stub"

    def __init__(self, score: float) -> None:
        self.score = score
        self.boxes: list[tuple[float, ...]] = []

    def spoof_score(self, bgr: np.ndarray, bbox: tuple[float, float, float, float]) -> float:
        self.boxes.append(tuple(bbox))
        return self.score


class _Gated:
    """An engine called with a fixed quality bar, as a worker calls it with its command's bar."""

    def __init__(self, engine: FaceEngine, quality_min: float) -> None:
        self.engine, self.quality_min = engine, quality_min

    def prepare(self, image: bytes):  # type: ignore[no-untyped-def]
        prepared = self.engine.prepare(image)
        vectors, qualities = self.engine.embed_scored([f.crop for f in prepared.faces])
        faces, _ = apply_bar(scored(prepared.faces, qualities), list(vectors), self.quality_min)
        return dataclasses.replace(prepared, faces=faces)


def _gated(faces, policy="largest", quality_min=0.5, liveness=None, draft=0) -> _Gated:
    engine = FaceEngine(
        detector=StubDetector(faces),
        recognizer=StubRecognizer(),
        quality=StubQuality(),
        limits=DecodeLimits(max_bytes=10**7, max_pixels=10**8, draft_min_side=draft),
        multi_face_policy=policy,
        liveness=liveness,
        liveness_threshold=0.5,
    )
    return _Gated(engine, quality_min)


def test_prepare_refuses_no_face_for_quality() -> None:
    engine = _gated([_face(50, 40, 100, 0.01)]).engine
    prepared = engine.prepare(encode(gradient(320, 240), "PNG"))
    assert prepared.faces[0].quality == 0.01
    assert prepared.faces[0].quality_reason.startswith("sharpness 0.01")


def test_embed_scored_turns_the_norm_into_quality_when_the_pack_calibrates_it() -> None:
    crops = [np.zeros((112, 112, 3), np.uint8)] * 2
    plain = _gated([]).engine
    vectors, qualities = plain.embed_scored(crops)
    assert qualities is None and np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    calibrated = FaceEngine(
        detector=StubDetector([]),
        recognizer=StubRecognizer(),
        quality=StubQuality(),
        limits=DecodeLimits(max_bytes=10**7, max_pixels=10**8),
        quality_norm=(2.0, 4.0),
    )
    vectors, qualities = calibrated.embed_scored(crops)
    assert qualities is not None and np.allclose(qualities, 0.5)  # norm 3 on the 2..4 span


def test_low_quality_face_is_rejected_naming_the_factor() -> None:
    with pytest.raises(FacestreamError) as info:
        _gated([_face(50, 40, 100, 0.3)]).prepare(encode(gradient(320, 240), "PNG"))
    assert info.value.code == ErrorCode.LOW_QUALITY
    assert "0.30 is below 0.50" in info.value.message and "sharpness" in info.value.message


def test_quality_gate_off_and_factors_recorded() -> None:
    prepared = _gated([_face(50, 40, 100, 0.3)], quality_min=0.0).prepare(encode(gradient(320, 240), "PNG"))
    assert prepared.faces[0].quality == 0.3
    assert prepared.faces[0].quality_factors["sharpness"] == 0.3


def test_real_default_quality_rejects_a_flat_crop() -> None:
    engine = FaceEngine(
        detector=StubDetector([_face(50, 40, 100, 0.95)]),
        recognizer=StubRecognizer(),
        quality=DefaultQuality(),
        limits=DecodeLimits(max_bytes=10**7, max_pixels=10**8),
    )
    flat = encode(Image.new("RGB", (320, 240), (128, 128, 128)), "PNG")
    with pytest.raises(FacestreamError) as info:
        _Gated(engine, DEFAULT_QUALITY_MIN).prepare(flat)
    assert info.value.code == ErrorCode.LOW_QUALITY and "sharpness 0.00" in info.value.message


def test_all_policy_drops_failing_faces_and_raises_only_when_none_is_left() -> None:
    image = encode(gradient(320, 240), "PNG")
    faces = [_face(0, 0, 50, 0.9), _face(100, 100, 120, 0.2)]
    prepared = _gated(faces, policy="all").prepare(image)
    assert [f.det_score for f in prepared.faces] == [0.9]
    assert prepared.face_count == 2
    with pytest.raises(FacestreamError) as info:
        _gated([_face(0, 0, 50, 0.1), _face(100, 100, 120, 0.2)], policy="all").prepare(image)
    assert info.value.code == ErrorCode.LOW_QUALITY


def test_liveness_gate_raises_spoof_suspected_above_threshold() -> None:
    image = encode(gradient(320, 240), "PNG")
    check = StubLiveness(0.8)
    with pytest.raises(FacestreamError) as info:
        _gated([_face(50, 40, 100, 0.9)], liveness=check).prepare(image)
    assert info.value.code == ErrorCode.SPOOF_SUSPECTED and "0.80 is above 0.50" in info.value.message
    passing = _gated([_face(50, 40, 100, 0.9)], liveness=StubLiveness(0.2)).prepare(image)
    assert "liveness_ms" in passing.timings


def test_liveness_sees_boxes_in_decoded_pixels() -> None:
    check = StubLiveness(0.0)
    engine = _gated([_face(100, 50, 100, 0.9), _face(0, 0, 60, 0.1)], policy="all", liveness=check, draft=400)
    engine.prepare(encode(gradient(1600, 1200), "JPEG"))
    # Drafted 1/4: the detector's own pixels. The quality bar comes after embedding, so the
    # poor second face is checked too.
    assert check.boxes == [(100.0, 50.0, 100.0, 100.0), (0.0, 0.0, 60.0, 60.0)]


def test_no_liveness_by_default_adds_no_timing() -> None:
    prepared = _gated([_face(50, 40, 100, 0.9)]).prepare(encode(gradient(320, 240), "PNG"))
    assert set(prepared.timings) == {"decode_ms", "detect_ms", "align_ms"}
