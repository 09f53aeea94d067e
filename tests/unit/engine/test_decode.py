from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.errors import ErrorCode, FacestreamError
from engine.decode import DecodeLimits, decode_image, sniff_format
from tests.unit.engine.images import encode, gradient, jpeg_with_orientation, png_header_only

LIMITS = DecodeLimits(max_bytes=5_000_000, max_pixels=50_000_000)


def _code(data: bytes, limits: DecodeLimits = LIMITS) -> ErrorCode:
    with pytest.raises(FacestreamError) as info:
        decode_image(data, limits)
    return info.value.code


@pytest.mark.parametrize(
    ("fmt", "expected", "kwargs"),
    [
        ("PNG", "PNG", {}),
        ("JPEG", "JPEG", {"quality": 95}),
        ("WEBP", "WEBP", {"lossless": True}),
        ("BMP", "BMP", {}),
        ("PPM", "PPM", {}),
        ("TIFF", "TIFF", {}),
        ("GIF", "GIF", {}),
    ],
)
def test_supported_formats_decode_to_bgr(fmt: str, expected: str, kwargs: dict) -> None:
    img = gradient(64, 48)
    decoded = decode_image(encode(img, fmt, **kwargs), LIMITS)
    assert decoded.format == expected
    assert decoded.bgr.shape == (48, 64, 3)
    assert decoded.bgr.dtype == np.uint8
    assert decoded.original_size == (64, 48)
    assert decoded.scale == 1.0
    if fmt in ("PNG", "BMP", "PPM", "TIFF", "WEBP"):  # lossless: exact pixels, channels swapped
        np.testing.assert_array_equal(decoded.bgr[:, :, ::-1], np.asarray(img))


def test_pgm_greyscale_becomes_three_channels() -> None:
    decoded = decode_image(encode(gradient(mode="L"), "PPM"), LIMITS)  # Pillow writes P5 for L
    assert decoded.format == "PPM"
    assert decoded.bgr.shape == (48, 64, 3)
    assert (decoded.bgr[:, :, 0] == decoded.bgr[:, :, 1]).all()


def test_format_is_sniffed_not_taken_from_a_name() -> None:
    webp = encode(gradient(), "WEBP")
    assert sniff_format(webp) == "WEBP"
    assert decode_image(webp, LIMITS).format == "WEBP"


def test_one_by_one_pixel_image() -> None:
    decoded = decode_image(encode(Image.new("RGB", (1, 1), (10, 20, 30)), "PNG"), LIMITS)
    assert decoded.bgr.tolist() == [[[30, 20, 10]]]


def test_cmyk_jpeg_becomes_rgb() -> None:
    cmyk = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # pure red in CMYK
    decoded = decode_image(encode(cmyk, "JPEG", quality=95), LIMITS)
    b, g, r = decoded.bgr[16, 16].tolist()
    assert decoded.bgr.shape == (32, 32, 3)
    assert r > 200 and g < 60 and b < 60


def test_alpha_and_palette_are_flattened_on_white() -> None:
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))  # fully transparent red
    decoded = decode_image(encode(rgba, "PNG"), LIMITS)
    assert decoded.bgr[0, 0].tolist() == [255, 255, 255]
    palette = gradient().convert("P")
    assert decode_image(encode(palette, "PNG"), LIMITS).bgr.shape == (48, 64, 3)


def test_sixteen_bit_greyscale_is_stretched_not_clipped() -> None:
    arr = np.linspace(0, 60000, 64 * 48, dtype=np.uint16).reshape(48, 64)
    decoded = decode_image(encode(Image.fromarray(arr), "PNG"), LIMITS)
    assert decoded.bgr.min() == 0 and decoded.bgr.max() == 255


def test_exif_orientation_is_applied() -> None:
    img = gradient(64, 48)
    decoded = decode_image(jpeg_with_orientation(img, 6), LIMITS)  # rotate 90 degrees CW
    assert decoded.bgr.shape == (64, 48, 3)
    assert decoded.original_size == (48, 64)


def test_big_jpeg_is_drafted_and_reports_its_scale() -> None:
    data = encode(gradient(1600, 1200), "JPEG", quality=90)
    decoded = decode_image(data, DecodeLimits(5_000_000, 50_000_000, draft_min_side=400))
    assert decoded.original_size == (1600, 1200)
    assert decoded.bgr.shape == (300, 400, 3)  # 1/4 DCT scale: still >= 400 on the long side
    assert decoded.scale == pytest.approx(0.25)


def test_draft_with_exif_rotation_keeps_coordinates_consistent() -> None:
    data = jpeg_with_orientation(gradient(1600, 1200), 6)
    decoded = decode_image(data, DecodeLimits(5_000_000, 50_000_000, draft_min_side=400))
    assert decoded.original_size == (1200, 1600)
    assert decoded.bgr.shape == (400, 300, 3)
    assert decoded.scale == pytest.approx(0.25)


def test_truncated_jpeg_is_undecodable() -> None:
    data = encode(gradient(256, 256), "JPEG", quality=95)
    assert _code(data[: len(data) // 2]) == ErrorCode.UNDECODABLE_IMAGE


def test_truncated_png_is_undecodable() -> None:
    data = encode(gradient(256, 256), "PNG")
    assert _code(data[: len(data) // 2]) == ErrorCode.UNDECODABLE_IMAGE


@pytest.mark.parametrize(
    "data",
    [b"", b"hello, I am a text file\n", b'{"image": "nope"}', b"\x00" * 100, b"\xff\xd8"],
)
def test_garbage_is_undecodable(data: bytes) -> None:
    assert _code(data) == ErrorCode.UNDECODABLE_IMAGE


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.7\n...",
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic",
        b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1",
        b"\x00\x00\x00\x0cjP  \r\n\x87\n\x00\x00",
        b'<svg xmlns="http://www.w3.org/2000/svg"></svg>',
        b"8BPS\x00\x01",
    ],
)
def test_known_but_unsupported_formats(data: bytes) -> None:
    assert _code(data) == ErrorCode.UNSUPPORTED_FORMAT


def test_too_many_bytes_is_rejected_before_decoding() -> None:
    data = encode(gradient(), "PNG")
    assert _code(data, DecodeLimits(max_bytes=len(data) - 1, max_pixels=10**9)) == (ErrorCode.IMAGE_TOO_LARGE)


def test_decompression_bomb_header_is_rejected_before_decoding() -> None:
    bomb = png_header_only(20_000, 20_000)
    assert len(bomb) < 200
    assert _code(bomb) == ErrorCode.IMAGE_TOO_LARGE


def test_pixel_limit_applies_to_real_images() -> None:
    data = encode(gradient(100, 100), "PNG")
    assert _code(data, DecodeLimits(max_bytes=10**7, max_pixels=9_999)) == (ErrorCode.IMAGE_TOO_LARGE)
    assert decode_image(data, DecodeLimits(max_bytes=10**7, max_pixels=10_000)).bgr.shape[0] == 100


def test_pillow_bomb_error_maps_to_image_too_large() -> None:
    # Our limit above Pillow's hard limit (2x MAX_IMAGE_PIXELS): Pillow's own guard fires.
    bomb = png_header_only(20_000, 20_000)
    assert _code(bomb, DecodeLimits(max_bytes=10**7, max_pixels=10**12)) == (ErrorCode.IMAGE_TOO_LARGE)
