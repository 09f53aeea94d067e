"""Records' values and headers packed back to back, as the rebuild's reader hands them over
(``streams._packed_consumer``): one bytes object and two int64 arrays, read with numpy by the
bulk fold and one record at a time only where a record must be read alone. Values held one by
one (the live tail's records) are packed the same way (``pack_values``): the fold has one path."""

from __future__ import annotations

import struct
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, overload

import numpy as np

_NAME_SIZE = struct.Struct("<I")
_VALUE_SIZE = struct.Struct("<i")


T = TypeVar("T")
Headers = list[tuple[str, bytes | None]]


@dataclass
class _Packed(Sequence[T]):
    """Items packed back to back in ``data``: item i from ``starts[i]``, ``lengths[i]`` bytes
    long (-1: none), read only when asked."""

    data: bytes
    starts: np.ndarray  # int64
    lengths: np.ndarray  # int64

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> list[T]: ...
    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            return [self._item(i) for i in range(*index.indices(len(self)))]
        return self._item(index)

    def __len__(self) -> int:
        return len(self.lengths)

    @abstractmethod
    def _item(self, index: int) -> T: ...


class PackedValues(_Packed[bytes | None]):
    """Each record's value; None for a tombstone."""

    def _item(self, index: int) -> bytes | None:
        length = int(self.lengths[index])
        if length < 0:
            return None
        start = int(self.starts[index])
        return self.data[start : start + length]


class PackedHeaders(_Packed[Headers | None]):
    """Each record's headers, packed as (u32 name length, name, i32 value length or -1, value)
    each; None for a record without any (or a bare one, see ``_packed_consumer``)."""

    def _item(self, index: int) -> Headers | None:
        length = int(self.lengths[index])
        if length < 0:
            return None
        at = int(self.starts[index])
        end = at + length
        headers: Headers = []
        while at < end:
            (name_size,) = _NAME_SIZE.unpack_from(self.data, at)
            name = self.data[at + 4 : at + 4 + name_size].decode()
            (value_size,) = _VALUE_SIZE.unpack_from(self.data, at + 4 + name_size)
            at += 8 + name_size
            if value_size < 0:
                headers.append((name, None))
            else:
                headers.append((name, self.data[at : at + value_size]))
                at += value_size
        return headers


def pack_values(values: Sequence[bytes | None]) -> PackedValues:
    """Values held one by one (aiokafka's records, records in memory), packed as the reader
    packs them: one copy, in C."""
    lengths = np.fromiter((-1 if v is None else len(v) for v in values), dtype=np.int64, count=len(values))
    starts = np.zeros(len(values), dtype=np.int64)
    np.cumsum(np.maximum(lengths[:-1], 0), out=starts[1:])
    return PackedValues(b"".join(v for v in values if v is not None), starts, lengths)


def join_packed(parts: Sequence[_Packed[Any]]) -> tuple[bytes, np.ndarray, np.ndarray]:
    """Consecutive packed parts as one: (data, starts, lengths)."""
    shifts = np.cumsum([0] + [len(part.data) for part in parts[:-1]])
    starts = np.concatenate([part.starts + shift for part, shift in zip(parts, shifts, strict=True)])
    lengths = np.concatenate([part.lengths for part in parts])
    return b"".join(part.data for part in parts), starts, lengths
