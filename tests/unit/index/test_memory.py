"""Fresh arrays for large indexes: private small-page maps above a size, plain arrays below."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from index import memory


def test_a_small_array_is_an_ordinary_one() -> None:
    rows = memory.empty((10, 4), np.float32)
    assert rows.shape == (10, 4) and rows.dtype == np.float32 and rows.base is None


def test_a_large_array_is_a_writable_map_that_outlives_its_name() -> None:
    rows = memory.empty((memory.MAPPED_FROM_BYTES // 64 + 1, 16), np.float32)
    assert rows.base is not None  # a view of the map, not an array of its own
    assert rows.flags.writeable and rows.flags.c_contiguous and not isinstance(rows, np.memmap)
    rows[-1] = 7.0
    view = rows[-2:]
    del rows
    assert float(view[-1, 0]) == 7.0  # the map lives as long as any view of it


def _mapping_of(array: np.ndarray) -> tuple[str, list[str]]:
    """The permissions and VmFlags of the mapping holding ``array`` (Linux's /proc/self/smaps)."""
    address = array.__array_interface__["data"][0]
    lines = Path("/proc/self/smaps").read_text().splitlines()
    for i, line in enumerate(lines):
        span, *rest = line.split(maxsplit=2)
        low, _, high = span.partition("-")
        if rest and high and int(low, 16) <= address < int(high, 16):
            flags = next(f for f in lines[i + 1 :] if f.startswith("VmFlags:"))
            return rest[0], flags.split()[1:]
    raise AssertionError("no mapping holds the array")


def test_a_large_array_is_private_and_never_in_huge_pages() -> None:
    rows = memory.empty((memory.MAPPED_FROM_BYTES // 64 + 1, 16), np.float32)
    permissions, flags = _mapping_of(rows)
    assert permissions == "rw-p"  # private: a shared anonymous map is shmem, faulted more slowly here
    assert "nh" in flags  # MADV_NOHUGEPAGE: huge-page faults cost 7x more in this VM
