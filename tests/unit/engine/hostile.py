"""The hostile-input table: each entry is bytes an attacker or a broken client may send, and the
error code the engine must answer with. Shared by the unit test (stub detector, no models) and
the integration test (real default pack): both must agree.

Decodable-but-faceless inputs (CMYK, 1x1, huge EXIF, an animated GIF's first frame) are
expected to be `no_face`: they are valid images, and the detector finds nothing in them.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable

from PIL import Image

from core.errors import ErrorCode
from tests.unit.engine.images import encode, gradient, png_header_only


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def png_bomb(side: int = 10_000) -> bytes:
    """A real decompression bomb: side x side greyscale zeros, ~100 MB of pixels in ~100 kB."""
    z = zlib.compressobj(9)
    row = b"\x00" * (side + 1)  # filter byte + pixels
    data = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int) -> bytes:
    """A tiny real JPEG whose SOF header is patched to claim width x height."""
    data = bytearray(encode(gradient(16, 16), "JPEG", quality=90))
    sof = data.find(b"\xff\xc0")
    assert sof > 0
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def gif_claiming(width: int, height: int) -> bytes:
    data = bytearray(encode(gradient(8, 8), "GIF"))
    struct.pack_into("<HH", data, 6, width, height)  # logical screen size
    struct.pack_into("<HH", data, data.find(b"\x2c") + 5, width, height)  # first image descriptor
    return bytes(data)


def truncated_jpeg() -> bytes:
    data = encode(gradient(256, 256), "JPEG", quality=95)
    return data[: len(data) // 2]


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (32, 32), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def cmyk_jpeg() -> bytes:
    return encode(Image.new("CMYK", (64, 64), (0, 255, 255, 0)), "JPEG", quality=90)


def huge_exif_jpeg() -> bytes:
    """A 60 kB MakerNote in EXIF plus 40 more 60 kB APP2 segments: ~2.5 MB of metadata."""
    exif = Image.Exif()
    exif[0x927C] = b"\xab" * 60_000  # MakerNote
    exif[0x0112] = 1
    data = encode(gradient(64, 64), "JPEG", quality=90, exif=exif.tobytes())
    segment = b"\xff\xe2" + struct.pack(">H", 60_002) + b"\x00" * 60_000
    return data[:2] + segment * 40 + data[2:]


def broken_exif_jpeg() -> bytes:
    """EXIF whose IFD offset points far outside the block."""
    data = encode(gradient(64, 64), "JPEG", quality=90)
    tiff = b"MM\x00*" + struct.pack(">I", 0x7FFFFFF0)
    app1 = b"\xff\xe1" + struct.pack(">H", 2 + 6 + len(tiff)) + b"Exif\x00\x00" + tiff
    return data[:2] + app1 + data[2:]


HOSTILE: list[tuple[str, Callable[[], bytes], ErrorCode]] = [
    ("empty", lambda: b"", ErrorCode.UNDECODABLE_IMAGE),
    ("truncated_jpeg", truncated_jpeg, ErrorCode.UNDECODABLE_IMAGE),
    ("png_bomb_10000x10000", png_bomb, ErrorCode.IMAGE_TOO_LARGE),
    ("png_header_20000x20000", lambda: png_header_only(20_000, 20_000), ErrorCode.IMAGE_TOO_LARGE),
    ("jpeg_header_20000x20000", lambda: jpeg_claiming(20_000, 20_000), ErrorCode.IMAGE_TOO_LARGE),
    ("gif_header_65535x65535", lambda: gif_claiming(65_535, 65_535), ErrorCode.IMAGE_TOO_LARGE),
    ("text_file", lambda: b"name,identity\nalice,1\n", ErrorCode.UNDECODABLE_IMAGE),
    ("html_page", lambda: b"<!doctype html><html></html>", ErrorCode.UNDECODABLE_IMAGE),
    ("heic", lambda: b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", ErrorCode.UNSUPPORTED_FORMAT),
    ("pdf", lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", ErrorCode.UNSUPPORTED_FORMAT),
    ("animated_gif_first_frame", animated_gif, ErrorCode.NO_FACE),
    ("cmyk_jpeg", cmyk_jpeg, ErrorCode.NO_FACE),
    ("one_by_one_png", lambda: encode(Image.new("RGB", (1, 1)), "PNG"), ErrorCode.NO_FACE),
    ("huge_exif_jpeg", huge_exif_jpeg, ErrorCode.NO_FACE),
    ("broken_exif_jpeg", broken_exif_jpeg, ErrorCode.NO_FACE),
]
