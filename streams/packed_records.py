"""Records' values and headers packed back to back, as the rebuild's reader hands them over
(``streams._packed_consumer``): one bytes object and two int64 arrays, read with numpy by the
bulk fold and one record at a time only where a record must be read alone."""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np

_NAME_SIZE = struct.Struct("<I")
_VALUE_SIZE = struct.Struct("<i")


@dataclass
class PackedValues(Sequence[bytes | None]):
    """Each record's value: ``data[starts[i] : starts[i] + lengths[i]]``, None where the length
    is -1 (a tombstone)."""

    data: bytes
    starts: np.ndarray  # int64
    lengths: np.ndarray  # int64

    @overload
    def __getitem__(self, index: int) -> bytes | None: ...
    @overload
    def __getitem__(self, index: slice) -> list[bytes | None]: ...
    def __getitem__(self, index: int | slice) -> bytes | list[bytes | None] | None:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        length = int(self.lengths[index])
        if length < 0:
            return None
        start = int(self.starts[index])
        return self.data[start : start + length]

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[bytes | None]:
        return (self[i] for i in range(len(self)))


@dataclass
class PackedHeaders(Sequence[list[tuple[str, bytes | None]] | None]):
    """Each record's headers, packed as (u32 name length, name, i32 value length or -1, value)
    each and decoded only when asked; None for a record without any."""

    data: bytes
    starts: np.ndarray  # int64
    lengths: np.ndarray  # int64, -1: no headers

    @overload
    def __getitem__(self, index: int) -> list[tuple[str, bytes | None]] | None: ...
    @overload
    def __getitem__(self, index: slice) -> list[list[tuple[str, bytes | None]] | None]: ...
    def __getitem__(
        self, index: int | slice
    ) -> list[tuple[str, bytes | None]] | list[list[tuple[str, bytes | None]] | None] | None:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        length = int(self.lengths[index])
        if length < 0:
            return None
        at = int(self.starts[index])
        end = at + length
        headers: list[tuple[str, bytes | None]] = []
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

    def __len__(self) -> int:
        return len(self.lengths)


def join_packed(parts: Sequence[PackedValues | PackedHeaders]) -> tuple[bytes, np.ndarray, np.ndarray]:
    """Consecutive packed parts as one: (data, starts, lengths)."""
    shifts = np.cumsum([0] + [len(part.data) for part in parts[:-1]])
    starts = np.concatenate([part.starts + shift for part, shift in zip(parts, shifts, strict=True)])
    lengths = np.concatenate([part.lengths for part in parts])
    return b"".join(part.data for part in parts), starts, lengths
