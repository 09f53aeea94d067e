"""Fresh memory for large vector arrays, backed by transparent huge pages where the OS allows.

An index of a million 512-d faces is 2 GiB written once, row by row, while it is rebuilt: the
first touch of each 4 KiB page is a page fault, and in a virtual machine a fault that the host
must back too (measured here: 5.3 s to first-touch 2 GiB with 4 KiB pages, 1.6 s with 2 MiB
pages). ``np.empty`` cannot ask for huge pages (the kernel's default here is ``madvise``), so
large arrays are anonymous maps advised ``MADV_HUGEPAGE``; small ones stay ordinary arrays.
"""

from __future__ import annotations

import mmap

import numpy as np

HUGE_FROM_BYTES = 32 << 20  # below this, faults are few and a map per array is not worth it


def empty(shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """An uninitialised, writable array, like ``np.empty``."""
    kind = np.dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64)) * kind.itemsize
    advice = getattr(mmap, "MADV_HUGEPAGE", None)
    if size < HUGE_FROM_BYTES or advice is None:
        return np.empty(shape, dtype=kind)
    region = mmap.mmap(-1, size)
    region.madvise(advice)
    return np.frombuffer(region, dtype=kind).reshape(shape)  # the array keeps the map alive
