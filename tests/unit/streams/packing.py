"""Headers packed in Python as the native reader packs them (``streams._packed_consumer``), for
tests that fold the same records with either kind of headers."""

from __future__ import annotations

import dataclasses
import struct
from typing import Any

from streams.bulk_fold import RecordBatch
from streams.packed_records import PackedHeaders, pack_values


def packed_headers(batch: RecordBatch) -> RecordBatch:
    """``batch`` with its headers packed (what the reader hands over)."""
    packed = pack_values([_packed(h) for h in batch.headers])
    return dataclasses.replace(batch, headers=PackedHeaders(packed.data, packed.starts, packed.lengths))


def _packed(headers: Any) -> bytes | None:
    if not headers:
        return None
    out = b""
    for name, value in headers:
        encoded = name.encode()
        out += struct.pack("<I", len(encoded)) + encoded
        out += struct.pack("<i", -1) if value is None else struct.pack("<i", len(value)) + value
    return out
