"""Hostile inputs through the whole `prepare` path with a stub detector: no models needed."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest

from core.errors import HTTP_STATUS, ErrorCode, FacestreamError
from engine.decode import DecodeLimits, decode_image
from engine.pipeline import FaceEngine
from engine.quality import DefaultQuality
from schemas.events import ModelInfo
from tests.unit.engine.hostile import HOSTILE, animated_gif, huge_exif_jpeg

pytestmark = [
    pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
    pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning"),
]

LIMITS = DecodeLimits(max_bytes=15 * 1024 * 1024, max_pixels=50_000_000, draft_min_side=1280)


class NoFaces:
    def detect(self, bgr: np.ndarray) -> list:
        return []


class NeverCalled:
    model_info = ModelInfo(pack="stub", recognizer="stub", version="1", dim=4)

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        raise AssertionError("hostile input must never reach the recognizer")


ENGINE = FaceEngine(detector=NoFaces(), recognizer=NeverCalled(), quality=DefaultQuality(), limits=LIMITS)


@pytest.mark.parametrize(("name", "make", "code"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_input_maps_to_its_error_code(name: str, make: Callable[[], bytes], code: ErrorCode) -> None:
    with pytest.raises(FacestreamError) as info:
        ENGINE.prepare(make())
    assert info.value.code == code, info.value.message
    assert 400 <= HTTP_STATUS[info.value.code] < 500


def test_animated_gif_decodes_its_first_frame_only() -> None:
    decoded = decode_image(animated_gif(), LIMITS)
    assert decoded.format == "GIF"
    b, _, r = decoded.bgr[16, 16].tolist()
    assert r > 200 and b < 60  # the red first frame, not the blue second one


def test_huge_exif_is_decoded_not_rejected() -> None:
    data = huge_exif_jpeg()
    assert len(data) > 2_000_000
    assert decode_image(data, LIMITS).bgr.shape == (64, 64, 3)


def test_byte_limit_applies_before_anything_else() -> None:
    small = DecodeLimits(max_bytes=1000, max_pixels=50_000_000)
    with pytest.raises(FacestreamError) as info:
        decode_image(huge_exif_jpeg(), small)
    assert info.value.code == ErrorCode.IMAGE_TOO_LARGE
