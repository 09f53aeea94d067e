"""Reduced decoding for detection, with the crop taken at the resolution the face needs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine.align import align
from engine.crop import _TEMPLATE, aligned_crop, enlargement
from engine.decode import DecodeLimits, decode_image
from tests.unit.engine.images import encode, gradient, jpeg_with_orientation

DRAFTED = DecodeLimits(max_bytes=10**7, max_pixels=10**8, draft_min_side=400)
FULL = DecodeLimits(max_bytes=10**7, max_pixels=10**8)


def _photo(width: int = 1600, height: int = 1200) -> bytes:
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8)
    img = Image.fromarray(noise).resize((width, height), Image.Resampling.BICUBIC)
    return encode(img, "JPEG", quality=92)


def _face(spread_scale: float, at: tuple[float, float]) -> np.ndarray:
    """Landmarks shaped like the template, ``spread_scale`` times its size, centred at ``at``."""
    centred = _TEMPLATE - _TEMPLATE.mean(axis=0)
    return (centred * spread_scale + np.asarray(at)).astype(np.float32)


def test_enlargement_is_the_alignment_scale() -> None:
    assert enlargement(_TEMPLATE) == pytest.approx(1.0)
    assert enlargement(_face(4.0, (500, 400))) == pytest.approx(0.25)
    assert enlargement(_face(0.5, (50, 40))) == pytest.approx(2.0)


def test_a_small_face_is_cropped_from_a_finer_decode() -> None:
    data = _photo()
    reduced = decode_image(data, DRAFTED)
    assert reduced.scale == pytest.approx(0.25)
    landmarks = _face(0.4, (200, 150))  # in the reduced image: would be enlarged 2.5x
    full = decode_image(data, FULL)
    expected = align(full.bgr, landmarks / reduced.scale)  # the same face, full resolution
    np.testing.assert_array_equal(aligned_crop(reduced, landmarks), expected)
    assert reduced.at_scale(1.0) is reduced.at_scale(0.9)  # decoded again once, then reused


def test_a_face_the_reduced_image_resolves_is_cropped_from_it() -> None:
    data = _photo()
    reduced = decode_image(data, DRAFTED)
    landmarks = _face(1.5, (200, 150))  # larger than the template already
    np.testing.assert_array_equal(aligned_crop(reduced, landmarks), align(reduced.bgr, landmarks))
    assert reduced._finer == {}  # nothing decoded again


def test_the_finer_decode_is_the_nearest_dct_scale_and_keeps_orientation() -> None:
    data = jpeg_with_orientation(gradient(1600, 1200), 6)
    reduced = decode_image(data, DRAFTED)
    half = reduced.at_scale(0.3)
    assert half.scale == pytest.approx(0.5)
    assert half.bgr.shape == (800, 600, 3) and half.original_size == reduced.original_size


def test_images_that_were_not_drafted_are_never_decoded_again() -> None:
    png = decode_image(encode(gradient(1600, 1200), "PNG"), DRAFTED)
    small = decode_image(encode(gradient(300, 200), "JPEG"), DRAFTED)
    assert png.scale == 1.0 and png.at_scale(1.0) is png
    assert small.at_scale(1.0) is small
