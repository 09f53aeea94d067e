"""Untrusted image bytes -> a BGR array, or a FacestreamError saying exactly why not.

Order matters: byte size, then magic bytes, then the header's pixel count, and only then the
(expensive, attack-surface) pixel decode restricted to the one sniffed Pillow plugin.

Large JPEGs are decoded at a reduced DCT scale (`Image.draft`: libjpeg scales while it
inverse-transforms, so a 1/4-scale decode does a fraction of the work) when the image is far
bigger than detection needs; `DecodedImage.scale` records decoded/original so callers map
coordinates back to original pixels (`original = decoded / scale`). Where a face needs more
pixels than the reduced image holds (a small face in a big photo), `DecodedImage.at_scale`
decodes the same bytes again, through the same checks, at the scale asked for (full resolution
at most), once per scale and image.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import ErrorCode, FacestreamError

# Pillow plugin name for every container we decode.
SUPPORTED = ("JPEG", "PNG", "WEBP", "BMP", "PPM", "TIFF", "GIF")

# Real image formats we recognise but do not decode: a 415, not a "corrupt" 422.
_UNSUPPORTED_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000 codestream"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"),
    (b"\xff\x0a", "JPEG XL"),
    (b"8BPS", "PSD"),
    (b"%PDF", "PDF"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"qoif", "QOI"),
    (b"v/1\x01", "OpenEXR"),
    (b"DDS ", "DDS"),
    (b"%!PS", "PostScript"),
)


@dataclass(frozen=True)
class DecodeLimits:
    max_bytes: int
    max_pixels: int
    # Decode JPEGs at 1/2, 1/4 or 1/8 scale as long as the longer side stays >= this.
    # 0 disables reduced decoding.
    draft_min_side: int = 0


@dataclass(frozen=True, eq=False)
class DecodedImage:
    bgr: np.ndarray  # HxWx3 uint8, OpenCV channel order, EXIF orientation applied
    format: str  # one of SUPPORTED
    original_size: tuple[int, int]  # (width, height) of the full-resolution, oriented image
    scale: float  # decoded width / original width (1.0 unless a JPEG was drafted)
    # What `at_scale` needs to decode again; the decodes it made, by DCT scale denominator.
    _source: tuple[bytes, DecodeLimits] | None = field(default=None, repr=False)
    _finer: dict[int, DecodedImage] = field(default_factory=dict, repr=False)

    def at_scale(self, scale: float) -> DecodedImage:
        """This image decoded at ``scale`` of the original or finer (the nearest DCT scale,
        1/8 to 1); ``self`` when it already is. Only a drafted JPEG is ever decoded again."""
        if self.scale >= min(scale, 1.0) or self._source is None:
            return self
        denominator = next((d for d in (8, 4, 2) if 1 / d >= scale), 1)
        if denominator not in self._finer:
            data, limits = self._source
            self._finer[denominator] = _decode(data, limits, reduce_to=1 / denominator)
        return self._finer[denominator]


def sniff_format(data: bytes) -> str:
    """The Pillow format name from magic bytes alone (file names and MIME types lie)."""
    head = data[:32]
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head.startswith(b"BM"):
        return "BMP"
    if len(head) >= 3 and head[0:1] == b"P" and head[1:2] in b"123456" and head[2:3].isspace():
        return "PPM"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "TIFF"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    for magic, name in _UNSUPPORTED_MAGIC:
        if head.startswith(magic):
            raise FacestreamError(ErrorCode.UNSUPPORTED_FORMAT, f"{name} images are not supported")
    if head[4:8] == b"ftyp":
        brand = head[8:12].decode("ascii", "replace").strip()
        raise FacestreamError(
            ErrorCode.UNSUPPORTED_FORMAT, f"HEIF/AVIF/ISO-BMFF ({brand}) images are not supported"
        )
    if head.lstrip().startswith((b"<svg", b"<?xml")):
        raise FacestreamError(ErrorCode.UNSUPPORTED_FORMAT, "SVG images are not supported")
    raise FacestreamError(
        ErrorCode.UNDECODABLE_IMAGE,
        "not an image (supported: JPEG, PNG, WebP, BMP, PPM/PGM, TIFF, GIF)",
    )


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        # Wide greyscale: stretch to 8 bits instead of letting convert() clip at 255.
        arr = np.asarray(img, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        return Image.fromarray(arr.astype(np.uint8), "L").convert("RGB")
    if img.mode == "P" or "A" in img.getbands() or img.mode == "LA":
        rgba = img.convert("RGBA")
        # Transparent pixels carry arbitrary colour; show them as white like a browser would.
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _oriented_size(img: Image.Image) -> tuple[int, int]:
    try:
        orientation = img.getexif().get(0x0112, 1)
    except Exception:  # hostile EXIF must not fail an otherwise decodable image
        orientation = 1
    w, h = img.size
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def decode_image(data: bytes, limits: DecodeLimits) -> DecodedImage:
    """Decode untrusted bytes; a big JPEG at the smallest DCT scale that keeps its longer side
    at ``limits.draft_min_side`` or more."""
    return _decode(data, limits, reduce_to=None)


def _decode(data: bytes, limits: DecodeLimits, *, reduce_to: float | None) -> DecodedImage:
    """``reduce_to``: None for the draft limit; otherwise the DCT scale wanted (1: full)."""
    if len(data) > limits.max_bytes:
        raise FacestreamError(
            ErrorCode.IMAGE_TOO_LARGE,
            f"image is {len(data)} bytes; the limit is {limits.max_bytes}",
        )
    if not data:
        raise FacestreamError(ErrorCode.UNDECODABLE_IMAGE, "image is empty")
    fmt = sniff_format(data)
    try:
        img = Image.open(io.BytesIO(data), formats=[fmt])
        width, height = img.size
        if width <= 0 or height <= 0:
            raise FacestreamError(ErrorCode.UNDECODABLE_IMAGE, "image has no pixels")
        if width * height > limits.max_pixels:
            raise FacestreamError(
                ErrorCode.IMAGE_TOO_LARGE,
                f"image is {width}x{height} = {width * height} pixels; the limit is {limits.max_pixels}",
            )
        original = _oriented_size(img)
        ratio = _draft_ratio(fmt, width, height, limits, reduce_to)
        if ratio < 1.0:
            # draft() picks the smallest DCT scale whose result still covers the requested box.
            img.draft("RGB", (max(1, int(width * ratio)), max(1, int(height * ratio))))
        img.load()
        rgb = _to_rgb(ImageOps.exif_transpose(img) or img)
    except FacestreamError:
        raise
    except Image.DecompressionBombError as exc:
        raise FacestreamError(ErrorCode.IMAGE_TOO_LARGE, f"decompression bomb: {exc}") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        # Pillow reports truncation and corruption as OSError/SyntaxError/ValueError.
        raise FacestreamError(ErrorCode.UNDECODABLE_IMAGE, f"cannot decode {fmt}: {exc}") from exc
    except Exception as exc:  # a decoder bug on hostile input is still a 422, never a 500
        raise FacestreamError(ErrorCode.UNDECODABLE_IMAGE, f"cannot decode {fmt}: {exc!r}") from exc
    arr = np.asarray(rgb, dtype=np.uint8)
    bgr = np.ascontiguousarray(arr[:, :, ::-1])
    scale = bgr.shape[1] / original[0]
    return DecodedImage(
        bgr=bgr,
        format=fmt,
        original_size=original,
        scale=scale,
        _source=(data, limits) if scale < 1.0 else None,
    )


def _draft_ratio(fmt: str, width: int, height: int, limits: DecodeLimits, reduce_to: float | None) -> float:
    """The box to ask draft() for, as a fraction of the stored size (1: no reduction)."""
    if fmt != "JPEG":
        return 1.0
    if reduce_to is not None:
        return min(1.0, reduce_to)
    longest = max(width, height)
    if not limits.draft_min_side or longest <= limits.draft_min_side:
        return 1.0
    return limits.draft_min_side / longest
