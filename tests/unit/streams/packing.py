"""Records packed in Python as the native reader packs them (``streams._packed_consumer``), for
tests that fold the same records both ways."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from streams.bulk_fold import RecordBatch
from streams.packed_records import PackedHeaders, PackedValues


def packed(batch: RecordBatch) -> RecordBatch:
    return RecordBatch(
        list(batch.keys),
        PackedValues(*_pack(list(batch.values))),
        PackedHeaders(*_pack([_packed_headers(h) for h in batch.headers])),
        list(batch.partitions),
        list(batch.offsets),
    )


def _pack(items: list[bytes | None]) -> tuple[bytes, np.ndarray, np.ndarray]:
    lengths = np.array([-1 if item is None else len(item) for item in items], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(np.maximum(lengths, 0))[:-1]]).astype(np.int64)
    return b"".join(item or b"" for item in items), starts, lengths


def _packed_headers(headers: Any) -> bytes | None:
    if not headers:
        return None
    out = b""
    for name, value in headers:
        encoded = name.encode()
        out += struct.pack("<I", len(encoded)) + encoded
        out += struct.pack("<i", -1) if value is None else struct.pack("<i", len(value)) + value
    return out
