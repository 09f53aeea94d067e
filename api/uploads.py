"""Reading an uploaded image with its own size limit, in chunks, never more than the limit."""

from __future__ import annotations

from fastapi import UploadFile

from core.errors import ErrorCode, FacestreamError

CHUNK = 1024 * 1024


async def read_upload(upload: UploadFile, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await upload.read(CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise FacestreamError(ErrorCode.IMAGE_TOO_LARGE, f"image exceeds {max_bytes} bytes")
        chunks.append(chunk)
    if not size:
        raise FacestreamError(ErrorCode.UNDECODABLE_IMAGE, "the image is empty")
    return b"".join(chunks)
