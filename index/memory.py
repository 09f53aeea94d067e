"""Fresh memory for large vector arrays, in small pages.

An index of a million 512-d faces is 2 GiB written once, row by row, while it is rebuilt: the
first touch of each page is a fault, on the rebuild's serial path. numpy advises transparent
huge pages for every array over 4 MiB, and in this virtual machine (THP ``madvise``) a huge
page's fault costs far more than the 512 small ones it replaces. First touch of 2 GiB, measured
here: 5.6-6.4 s with numpy's huge pages, 0.8 s in a private map of 4 KiB pages, 0.9-1.2 s in a
shared one (what this module used before, believing it huge-page backed: anonymous shared
memory never is while ``shmem_enabled`` is ``never``). So large arrays are private anonymous
maps advised ``MADV_NOHUGEPAGE``; small ones stay ordinary arrays.
"""

from __future__ import annotations

import mmap

import numpy as np

MAPPED_FROM_BYTES = 32 << 20  # below this, faults are few and a map per array is not worth it


def empty(shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """An uninitialised, writable array, like ``np.empty``."""
    kind = np.dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64)) * kind.itemsize
    advice = getattr(mmap, "MADV_NOHUGEPAGE", None)
    if size < MAPPED_FROM_BYTES or advice is None:
        return np.empty(shape, dtype=kind)
    region = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    region.madvise(advice)
    return np.frombuffer(region, dtype=kind).reshape(shape)  # the array keeps the map alive
