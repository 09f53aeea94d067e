"""The embeddings topic's records in binary: the hot path of every rebuild.

A `FaceEmbedded` envelope is written as (format FSE2)

    offset 0   4 bytes   magic b"FSE2" (format and its version)
    offset 4   u32 LE    dim: the vector's length in float32s
    offset 8   u32 LE    length of the routing ids
    offset 12  u32 LE    length of the metadata
    offset 16  4*dim     the unit vector, float32 little-endian
    then       ids       person id, model id and gallery (empty: the default gallery), UTF-8,
                         each followed by a NUL byte
    then       metadata  the envelope as JSON without the vector bytes (event id, type, schema
                         version, time, correlation id, and the payload's other fields)

so that a reader rebuilding an index takes the vector at a fixed offset and the ids beside it
from the value alone: no Kafka headers (reading a record's headers costs librdkafka's client
more than its key and value together) and no JSON. The same ids also travel as headers, for
readers that route without the value (the eraser, tools). Records of the first binary format
(FSE1: a 12-byte head, ids in headers only) and JSON records written before stay readable:
readers tell them apart by the magic.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import ErrorCode, FacestreamError
from schemas.envelope import Envelope, envelope_of
from schemas.events import DEFAULT_GALLERY, FaceEmbedded

MAGIC = b"FSE2"
MAGIC_V1 = b"FSE1"
_HEAD = struct.Struct("<4sIII")
_HEAD_V1 = struct.Struct("<4sII")
VECTOR_OFFSET = _HEAD.size
HEAD = np.dtype([("magic", "S4"), ("dim", "<u4"), ("ids", "<u4"), ("meta", "<u4")])  # as numpy reads it
SEP = b"\x00"  # never in a person, model or gallery id (their patterns forbid it)


@dataclass(frozen=True, slots=True)
class Ids:
    person_id: str
    model_id: str
    gallery: str


def is_binary(value: bytes | None) -> bool:
    return value is not None and value[:4] in (MAGIC, MAGIC_V1)


def encode(envelope: Envelope[FaceEmbedded]) -> bytes:
    fact = envelope.payload
    vector = fact.embedding.vector_f32le
    gallery = "" if fact.gallery == DEFAULT_GALLERY else fact.gallery
    ids = SEP.join([fact.person_id.encode(), fact.embedding.model.id.encode(), gallery.encode(), b""])
    meta = envelope.model_dump_json(exclude={"payload": {"embedding": {"vector_f32le"}}}).encode()
    return _HEAD.pack(MAGIC, len(vector) // 4, len(ids), len(meta)) + vector + ids + meta


def ids(value: bytes) -> Ids | None:
    """The routing ids of a FSE2 record (None for FSE1, whose ids are in its headers only)."""
    dim, ids_len, _ = _layout(value)
    if value[:4] != MAGIC:
        return None
    start = VECTOR_OFFSET + 4 * dim
    parts = value[start : start + ids_len].split(SEP)
    if len(parts) != 4 or parts[3]:
        raise FacestreamError(ErrorCode.INVALID_MESSAGE, "binary embedding ids are malformed")
    try:
        person, model, gallery = (part.decode() for part in parts[:3])
    except UnicodeDecodeError as exc:
        raise FacestreamError(ErrorCode.INVALID_MESSAGE, f"binary embedding ids: {exc}") from exc
    return Ids(person, model, gallery or DEFAULT_GALLERY)


def _layout(value: bytes) -> tuple[int, int, int]:
    """dim, length of the ids and of the metadata, checked against the record's length."""
    v1 = value[:4] == MAGIC_V1
    head = _HEAD_V1 if v1 else _HEAD
    if len(value) < head.size:
        raise FacestreamError(ErrorCode.INVALID_MESSAGE, "binary embedding record is truncated")
    if v1:
        _, dim, meta_len = _HEAD_V1.unpack_from(value)
        ids_len = 0
    else:
        _, dim, ids_len, meta_len = _HEAD.unpack_from(value)
    expected = head.size + 4 * dim + ids_len + meta_len
    if len(value) != expected:
        raise FacestreamError(
            ErrorCode.INVALID_MESSAGE,
            f"binary embedding record of {len(value)} bytes, its header says {expected}",
        )
    return dim, ids_len, meta_len


def _vector_offset(value: bytes) -> int:
    return _HEAD_V1.size if value[:4] == MAGIC_V1 else VECTOR_OFFSET


def metadata(value: bytes) -> dict[str, Any]:
    """The envelope without the vector, as JSON data."""
    dim, ids_len, _ = _layout(value)
    try:
        meta = json.loads(value[_vector_offset(value) + 4 * dim + ids_len :])
    except ValueError as exc:
        raise FacestreamError(ErrorCode.INVALID_MESSAGE, f"binary embedding metadata: {exc}") from exc
    if not isinstance(meta, dict):
        raise FacestreamError(ErrorCode.INVALID_MESSAGE, "binary embedding metadata is not an object")
    return meta


def decode(value: bytes) -> Envelope[FaceEmbedded]:
    """The whole envelope back (the projector, re-embedding, tests)."""
    dim, _, _ = _layout(value)
    meta = metadata(value)
    offset = _vector_offset(value)
    try:
        meta["payload"]["embedding"]["vector_f32le"] = value[offset : offset + 4 * dim]
    except (KeyError, TypeError) as exc:
        raise FacestreamError(
            ErrorCode.INVALID_MESSAGE, "binary embedding metadata lacks its embedding"
        ) from exc
    envelope = envelope_of(FaceEmbedded).model_validate(meta)
    routed, fact = ids(value), envelope.payload
    if routed is not None and routed != Ids(fact.person_id, fact.embedding.model.id, fact.gallery):
        # A rebuild goes by the ids, everything else by the metadata: they must agree.
        raise FacestreamError(ErrorCode.INVALID_MESSAGE, "binary embedding ids disagree with its metadata")
    return envelope


def vector(value: bytes) -> np.ndarray:
    """The vector alone, as a read-only view of the record's bytes (no copy)."""
    dim, _, _ = _layout(value)
    return np.frombuffer(value, dtype="<f4", count=dim, offset=_vector_offset(value))
