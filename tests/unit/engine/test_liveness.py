from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from core.errors import ErrorCode, FacestreamError
from engine.factory import LIVENESS, build_liveness
from engine.liveness import FacepluginLiveness, NoLiveness, context_crop
from engine.packs import get_pack


class FakeSession:
    """An onnxruntime.InferenceSession double for fr_liveness.onnx."""

    def __init__(self, logits: list[float], shape=(1, 3, 128, 128), classes: int = 3) -> None:
        self.logits = np.asarray([logits], np.float32)
        self.shape, self.classes = list(shape), classes
        self.blobs: list[np.ndarray] = []

    def get_inputs(self):
        return [SimpleNamespace(name="input", shape=self.shape)]

    def get_outputs(self):
        return [SimpleNamespace(name="output", shape=[1, self.classes])]

    def run(self, names, feeds):
        self.blobs.append(feeds["input"])
        return [self.logits]


def test_no_liveness_never_flags() -> None:
    assert NoLiveness().spoof_score(np.zeros((10, 10, 3), np.uint8), (0, 0, 5, 5)) == 0.0


def test_context_crop_grows_the_box_and_stays_inside() -> None:
    img = np.zeros((400, 600, 3), np.uint8)
    img[150:250, 250:350] = 255  # the "face"
    crop = context_crop(img, (250, 150, 100, 100))
    assert crop.shape == (128, 128, 3)
    # 2.7x context: the bright face fills about (1/2.7)^2 of the crop
    assert (crop > 128).mean() == pytest.approx(1 / 2.7**2, abs=0.03)
    corner = context_crop(img, (0, 0, 100, 100))  # shifted, not padded
    assert corner.shape == (128, 128, 3)
    tiny = context_crop(np.zeros((3, 3, 3), np.uint8), (1, 1, 1, 1))
    assert tiny.shape == (128, 128, 3)


def test_faceplugin_adapter_feeds_bgr_0_255_nchw_and_scores_one_minus_live() -> None:
    session = FakeSession([2.0, 0.0, 0.0])
    check = FacepluginLiveness(session)
    img = np.zeros((200, 200, 3), np.uint8)
    img[..., 0] = 200  # blue in BGR
    score = check.spoof_score(img, (50, 50, 100, 100))
    expected_live = np.exp(2.0) / (np.exp(2.0) + 2)
    assert score == pytest.approx(1 - expected_live)
    (blob,) = session.blobs
    assert blob.shape == (1, 3, 128, 128) and blob.dtype == np.float32
    assert blob[0, 0].mean() == pytest.approx(200) and blob[0, 2].max() == 0  # channel 0 is B
    assert check.probabilities(img, (50, 50, 100, 100)).sum() == pytest.approx(1.0)


def test_faceplugin_adapter_refuses_a_different_model() -> None:
    with pytest.raises(ValueError):
        FacepluginLiveness(FakeSession([0, 0, 0], shape=(1, 3, 112, 112)))
    with pytest.raises(ValueError):
        FacepluginLiveness(FakeSession([0, 0], classes=2))


def test_liveness_registry_and_defaults() -> None:
    assert set(LIVENESS) == {"none", "faceplugin"}
    pack = get_pack("default")
    assert isinstance(build_liveness(pack, {}, SimpleNamespace(liveness="none")), NoLiveness)
    with pytest.raises(ValueError, match="unknown liveness"):
        build_liveness(pack, {}, SimpleNamespace(liveness="magic"))


def test_faceplugin_needs_a_pack_with_a_liveness_model() -> None:
    pack = get_pack("buffalo_l")
    paths = {"detector": Path("det.onnx"), "recognizer": Path("rec.onnx")}
    with pytest.raises(FacestreamError) as info:
        build_liveness(pack, paths, SimpleNamespace(liveness="faceplugin"))  # type: ignore[arg-type]
    assert info.value.code == ErrorCode.MODEL_NOT_INSTALLED
