"""The embeddings topic's records in binary: the hot path of every rebuild.

A `FaceEmbedded` envelope is written as

    offset 0   4 bytes   magic b"FSE1" (format and its version)
    offset 4   u32 LE    dim: the vector's length in float32s
    offset 8   u32 LE    length of the metadata
    offset 12  4*dim     the unit vector, float32 little-endian
    then       metadata  the envelope as JSON without the vector bytes (event id, type, schema
                         version, time, correlation id, and the payload's other fields)

so that a reader rebuilding an index takes the vector with one `frombuffer` at a fixed offset,
and the face id (key), the person id and the model id from Kafka headers, without parsing the
metadata at all. Anything else reads the whole envelope back (`decode`). Records written as
JSON before this format stay readable: readers tell them apart by the magic.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from core.errors import ErrorCode, FacestreamError
from schemas.envelope import Envelope
from schemas.events import FaceEmbedded

MAGIC = b"FSE1"
_HEAD = struct.Struct("<4sII")
VECTOR_OFFSET = _HEAD.size


def is_binary(value: bytes | None) -> bool:
    return value is not None and value[:4] == MAGIC


def encode(envelope: Envelope[FaceEmbedded]) -> bytes:
    vector = envelope.payload.embedding.vector_f32le
    meta = envelope.model_dump_json(exclude={"payload": {"embedding": {"vector_f32le"}}}).encode()
    return _HEAD.pack(MAGIC, len(vector) // 4, len(meta)) + vector + meta


def _layout(value: bytes) -> tuple[int, int]:
    if len(value) < VECTOR_OFFSET:
        raise FacestreamError(ErrorCode.INVALID_MESSAGE, "binary embedding record is truncated")
    _, dim, meta_len = _HEAD.unpack_from(value)
    expected = VECTOR_OFFSET + 4 * dim + meta_len
    if len(value) != expected:
        raise FacestreamError(
            ErrorCode.INVALID_MESSAGE,
            f"binary embedding record of {len(value)} bytes, its header says {expected}",
        )
    return dim, meta_len


def metadata(value: bytes) -> dict[str, Any]:
    """The envelope without the vector, as JSON data."""
    dim, _ = _layout(value)
    try:
        meta = json.loads(value[VECTOR_OFFSET + 4 * dim :])
    except ValueError as exc:
        raise FacestreamError(ErrorCode.INVALID_MESSAGE, f"binary embedding metadata: {exc}") from exc
    if not isinstance(meta, dict):
        raise FacestreamError(ErrorCode.INVALID_MESSAGE, "binary embedding metadata is not an object")
    return meta


def decode(value: bytes) -> Envelope[FaceEmbedded]:
    """The whole envelope back (the projector, re-embedding, tests)."""
    dim, _ = _layout(value)
    meta = metadata(value)
    try:
        meta["payload"]["embedding"]["vector_f32le"] = value[VECTOR_OFFSET : VECTOR_OFFSET + 4 * dim]
    except (KeyError, TypeError) as exc:
        raise FacestreamError(
            ErrorCode.INVALID_MESSAGE, "binary embedding metadata lacks its embedding"
        ) from exc
    return Envelope[FaceEmbedded].model_validate(meta)


def vector(value: bytes) -> np.ndarray:
    """The vector alone, as a read-only view of the record's bytes (no copy)."""
    dim, _ = _layout(value)
    return np.frombuffer(value, dtype="<f4", count=dim, offset=VECTOR_OFFSET)
