from __future__ import annotations

import numpy as np
import pytest

from core.errors import ErrorCode, FacestreamError
from engine.fake import DeterministicFakeEngine
from engine.types import Engine


def _vector(engine: DeterministicFakeEngine, image: bytes) -> np.ndarray:
    prepared = engine.prepare(image)
    return engine.embed([f.crop for f in prepared.faces])[0]


def test_it_is_an_engine_and_says_it_is_fake() -> None:
    engine: Engine = DeterministicFakeEngine()
    assert engine.model.pack == "fake"
    assert engine.model.dim == 512


def test_same_identity_is_close_and_different_identities_are_far() -> None:
    engine = DeterministicFakeEngine()
    people = [f"person-{i}" for i in range(12)]
    vectors = {(p, v): _vector(engine, f"FAKE:{p}:{v}".encode()) for p in people for v in "abc"}
    for v in vectors.values():
        assert v.dtype == np.float32 and abs(np.linalg.norm(v) - 1) < 1e-5
    for (p1, v1), a in vectors.items():
        for (p2, v2), b in vectors.items():
            if p1 == p2 and v1 != v2:
                assert a @ b > 0.9
            elif p1 != p2:
                assert a @ b < 0.3


def test_deterministic_across_instances() -> None:
    a = _vector(DeterministicFakeEngine(), b"FAKE:alice:1")
    b = _vector(DeterministicFakeEngine(), b"FAKE:alice:1")
    np.testing.assert_array_equal(a, b)


def test_prepared_image_shape_quality_and_hash() -> None:
    prepared = DeterministicFakeEngine().prepare(b"FAKE:alice:1:0.2")
    assert prepared.face_count == 1
    (face,) = prepared.faces
    assert face.crop.shape == (112, 112, 3)
    assert face.quality == pytest.approx(0.2)
    assert len(prepared.content_hash) == 64


@pytest.mark.parametrize(
    ("image", "code"),
    [
        (b"FAKE-NOFACE", ErrorCode.NO_FACE),
        (b"\x89PNG...", ErrorCode.UNDECODABLE_IMAGE),
        (b"FAKE:", ErrorCode.UNDECODABLE_IMAGE),
        (b"FAKE:alice:1:high", ErrorCode.UNDECODABLE_IMAGE),
    ],
)
def test_errors(image: bytes, code: ErrorCode) -> None:
    with pytest.raises(FacestreamError) as info:
        DeterministicFakeEngine().prepare(image)
    assert info.value.code == code


def test_multi_face_follows_the_policy() -> None:
    prepared = DeterministicFakeEngine().prepare(b"FAKE-MULTI")
    assert prepared.face_count == 2 and len(prepared.faces) == 1
    with pytest.raises(FacestreamError) as info:
        DeterministicFakeEngine(multi_face_policy="reject").prepare(b"FAKE-MULTI")
    assert info.value.code == ErrorCode.MULTIPLE_FACES
