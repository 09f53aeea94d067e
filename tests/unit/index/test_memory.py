"""Fresh arrays for large indexes: private small-page maps above a size, plain arrays below."""

from __future__ import annotations

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
