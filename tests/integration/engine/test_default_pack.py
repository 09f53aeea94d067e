from __future__ import annotations

import numpy as np
import pytest

from core.errors import ErrorCode, FacestreamError
from engine.pipeline import FaceEngine
from tests.integration.engine.conftest import Sample

pytestmark = [
    pytest.mark.models,
    pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning"),
]


@pytest.fixture(scope="module")
def gallery(engine: FaceEngine, samples: list[Sample]) -> tuple[np.ndarray, np.ndarray]:
    """One embedding per sample photo (the largest face), in manifest order."""
    crops = [engine.prepare(s.path.read_bytes()).faces[0].crop for s in samples]
    return engine.embed(crops), np.array([s.identity for s in samples])


def test_model_info(engine: FaceEngine) -> None:
    assert engine.model.pack == "default"
    assert engine.model.dim == 512
    assert engine.model.id == "default/fr_feature@faceplugin-fr_feature-0.0.1"


def test_every_sample_yields_an_aligned_face(engine: FaceEngine, samples: list[Sample]) -> None:
    for sample in samples:
        prepared = engine.prepare(sample.path.read_bytes())
        assert prepared.face_count >= 1, sample.path
        face = prepared.faces[0]
        assert face.crop.shape == (112, 112, 3) and face.crop.dtype == np.uint8
        # InsightFace order: eye on the viewer's left first, mouth likewise.
        assert face.landmarks[0, 0] < face.landmarks[1, 0], sample.path
        assert face.landmarks[3, 0] < face.landmarks[4, 0], sample.path
        width, height = prepared.size
        assert face.bbox.x >= 0 and face.bbox.x + face.bbox.width <= width + 1
        assert face.bbox.y >= 0 and face.bbox.y + face.bbox.height <= height + 1
        assert 0.5 < face.quality <= 1.0
        assert set(prepared.timings) == {"decode_ms", "detect_ms", "align_ms"}


def test_webp_with_a_jpg_name_is_sniffed(engine: FaceEngine, faces_dir) -> None:
    path = faces_dir / "people" / "scarlett_johansson" / "img47.jpg"
    assert engine.prepare(path.read_bytes()).format == "WEBP"


def test_embeddings_are_unit_norm(gallery: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, _ = gallery
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_genuine_pairs_score_far_above_impostors(gallery: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, ids = gallery
    sims = vectors @ vectors.T
    upper = np.triu_indices(len(ids), 1)
    same = (ids[:, None] == ids[None, :])[upper]
    genuine, impostor = sims[upper][same], sims[upper][~same]
    assert genuine.mean() > 0.6  # measured 0.71
    assert impostor.mean() < 0.1  # measured 0.01
    assert genuine.mean() - impostor.mean() > 0.5


def test_leave_one_out_rank1(gallery: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, ids = gallery
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    rank1 = float((ids[sims.argmax(axis=1)] == ids).mean())
    assert rank1 >= 0.98, rank1  # measured 1.0 (61/61)


def test_batched_embedding_equals_one_by_one(
    engine: FaceEngine, samples: list[Sample], gallery: tuple[np.ndarray, np.ndarray]
) -> None:
    crops = [engine.prepare(s.path.read_bytes()).faces[0].crop for s in samples[:20]]
    one_by_one = np.concatenate([engine.embed([c]) for c in crops])
    np.testing.assert_allclose(engine.embed(crops), one_by_one, atol=1e-4)
    np.testing.assert_allclose(gallery[0][:20], one_by_one, atol=1e-4)


def test_group_photo_and_multi_face_policies(engine: FaceEngine, faces_dir, make_engine) -> None:
    couple = (faces_dir / "scenes" / "couple.jpg").read_bytes()
    prepared = engine.prepare(couple)
    assert prepared.face_count == 2
    assert len(prepared.faces) == 1
    with pytest.raises(FacestreamError) as info:
        make_engine(multi_face_policy="reject").prepare(couple)
    assert info.value.code == ErrorCode.MULTIPLE_FACES
    many = engine.prepare((faces_dir / "scenes" / "selfie-many-people.jpg").read_bytes())
    assert many.face_count > 2


def test_no_face_in_a_face_free_image(engine: FaceEngine) -> None:
    import cv2

    blank = cv2.imencode(".png", np.full((480, 640, 3), 200, np.uint8))[1].tobytes()
    with pytest.raises(FacestreamError) as info:
        engine.prepare(blank)
    assert info.value.code == ErrorCode.NO_FACE


def test_prepare_is_safe_from_several_threads(engine: FaceEngine, samples: list[Sample]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    images = [s.path.read_bytes() for s in samples[:12]]
    expected = [engine.prepare(b).faces[0].bbox for b in images]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda b: engine.prepare(b).faces[0].bbox, images))
    assert got == expected
