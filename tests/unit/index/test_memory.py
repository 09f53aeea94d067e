"""Fresh arrays for large indexes: private small-page maps above a size, plain arrays below;
settled into huge pages once written."""

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


def test_a_large_array_is_private_and_born_in_small_pages() -> None:
    rows = memory.empty((memory.MAPPED_FROM_BYTES // 64 + 1, 16), np.float32)
    permissions, flags = _mapping_of(rows)
    assert permissions == "rw-p"  # private: a shared anonymous map is shmem, faulted more slowly here
    assert "nh" in flags  # MADV_NOHUGEPAGE: huge-page faults cost 7x more in this VM


def _huge_bytes(array: np.ndarray) -> int:
    """Bytes of huge pages in the mappings that overlap ``array`` (settling splits its map)."""
    low_end = array.__array_interface__["data"][0]
    high_end = low_end + array.nbytes
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split(maxsplit=1)[0]
        if "-" in head and not head.endswith(":"):
            low, _, high = head.partition("-")
            inside = int(low, 16) < high_end and int(high, 16) > low_end
        elif inside and head == "AnonHugePages:":
            total += int(line.split()[1]) * 1024
    return total


def _written(megabytes: int) -> np.ndarray:
    rows = memory.empty((megabytes << 20) // 4, np.float32)
    rows[:] = 1.0
    assert _huge_bytes(rows) == 0
    return rows


def test_settling_moves_the_written_part_into_huge_pages() -> None:
    rows = _written(80)
    settled = memory.settle(rows, 50 << 20)
    # Whole huge pages only, none past what was asked for.
    assert 48 << 20 <= settled <= 50 << 20
    unaligned_head = -rows.ctypes.data % memory.HUGE_PAGE
    assert _huge_bytes(rows) == settled - unaligned_head
    assert float(rows[-1]) == 1.0 and float(rows.sum()) == rows.size  # the contents are kept


def test_settling_goes_on_from_where_it_stopped() -> None:
    rows = _written(80)
    first = memory.settle(rows, 40 << 20)
    huge_then = _huge_bytes(rows)
    assert memory.settle(rows, 40 << 20, since=first) == first  # nothing new: nothing done
    later = memory.settle(rows, rows.nbytes, since=first)
    assert later > first and _huge_bytes(rows) > huge_then


def test_only_the_maps_of_empty_are_settled(tmp_path: Path) -> None:
    ordinary = np.ones((64 << 20) // 4, np.float32)
    assert memory.settle(ordinary, ordinary.nbytes) == 0
    np.save(tmp_path / "rows.npy", np.ones((64 << 20) // 4, np.float32))
    mapped = np.load(tmp_path / "rows.npy", mmap_mode="r")
    assert memory.settle(mapped, mapped.nbytes, since=3) == 3
    # Not even advised: the kernel would refuse the collapse itself, but not the advice.
    assert "hg" not in _mapping_of(mapped[(8 << 20) // 4 :])[1]
