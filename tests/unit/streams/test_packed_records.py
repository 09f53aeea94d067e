"""Packed records (the rebuild's native reader) read back one by one, and the native helpers
that copy their spans."""

from __future__ import annotations

import numpy as np
import pytest

from streams._packed_consumer import gather_rows, join_spans
from streams.bulk_fold import RecordBatch
from streams.bulk_log import join
from streams.packed_records import pack_values
from tests.unit.streams.packing import packed_headers

HEADERS = [[("event_type", b"FaceEmbedded"), ("empty", b""), ("none", None)], None, [("é", b"\x00\xff")]]


def _batch(offset: int) -> RecordBatch:
    values = pack_values([b"first", None, b""])
    return RecordBatch([b"a", None, b"c"], values, HEADERS, [0, 1, 0], [offset, offset, offset + 1])


def test_values_and_headers_read_back_as_they_were_packed() -> None:
    batch = packed_headers(_batch(0))
    assert list(batch.values) == [b"first", None, b""]
    assert batch.values[1:] == [None, b""]
    assert [batch.headers[i] for i in range(3)] == HEADERS
    assert batch.headers[0:2] == HEADERS[:2]


def test_joined_packed_batches_read_back_in_order() -> None:
    joined = join([packed_headers(_batch(0)), packed_headers(_batch(5))])
    assert list(joined.values) == [b"first", None, b""] * 2
    assert [joined.headers[i] for i in range(6)] == HEADERS * 2
    assert joined.offsets == [0, 0, 1, 5, 5, 6]
    mixed = join([packed_headers(_batch(0)), _batch(5)])  # headers as lists among packed ones
    assert list(mixed.values) == [b"first", None, b""] * 2 and list(mixed.headers) == HEADERS * 2


def test_gather_rows_copies_each_span_into_its_row() -> None:
    source = bytes(range(40))
    out = np.zeros((3, 4), dtype=np.uint8)
    gather_rows(source, np.array([10, 0, 36], dtype=np.int64), 4, out)
    assert out.tolist() == [[10, 11, 12, 13], [0, 1, 2, 3], [36, 37, 38, 39]]


@pytest.mark.parametrize(
    ("starts", "width", "rows"),
    [([37], 4, 1), ([-1], 4, 1), ([0, 4], 4, 1)],
    ids=["past-the-end", "negative-start", "out-too-small"],
)
def test_gather_rows_refuses_a_span_outside_its_buffers(starts: list[int], width: int, rows: int) -> None:
    out = np.zeros((rows, width), dtype=np.uint8)
    with pytest.raises(ValueError, match="outside"):
        gather_rows(bytes(40), np.array(starts, dtype=np.int64), width, out)
    assert not out.any()  # nothing written


def test_join_spans_joins_each_span_in_order() -> None:
    source = b"hello, world"
    starts, lengths = np.array([7, 5, 0], dtype=np.int64), np.array([5, 2, 0], dtype=np.int64)
    assert join_spans(source, starts, lengths) == b"world, "


def test_join_spans_refuses_bad_spans() -> None:
    with pytest.raises(ValueError, match="outside"):
        join_spans(b"abc", np.array([2], dtype=np.int64), np.array([2], dtype=np.int64))
    with pytest.raises(ValueError, match="count"):
        join_spans(b"abc", np.array([0, 1], dtype=np.int64), np.array([1], dtype=np.int64))
    with pytest.raises(ValueError, match="int64"):
        join_spans(b"abc", np.array([0, 0], dtype=np.int32), np.array([1, 1], dtype=np.int32))
