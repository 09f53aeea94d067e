"""Fresh memory for large vector arrays, in small pages.

An index of a million 512-d faces is 2 GiB written once, row by row, while it is rebuilt: the
first touch of each page is a fault, on the rebuild's serial path. numpy advises transparent
huge pages for every array over 4 MiB, and in this virtual machine (THP ``madvise``) a huge
page's fault costs far more than the 512 small ones it replaces. First touch of 2 GiB, measured
here: 5.6-6.4 s with numpy's huge pages, 0.8 s in a private map of 4 KiB pages, 0.9-1.2 s in a
shared one (what this module used before, believing it huge-page backed: anonymous shared
memory never is while ``shmem_enabled`` is ``never``). So large arrays are private anonymous
maps advised ``MADV_NOHUGEPAGE``; small ones stay ordinary arrays.

Once written, such an array can be moved into huge pages off the serial path (``settle``): a
flat search streams every row per query, and over 100k faces (200 MB) a matmul over huge pages
ran ~5% faster than over small ones here, enough to be ahead of numpy's own (huge-page) array
instead of level with it. The copy took 0.4-3 ms per MiB on this VM (the more, the fresher
the memory), so it is done by a background thread (the replica's snapshot writer), paced like
its I/O (``index.pacing``).
"""

from __future__ import annotations

import ctypes
import mmap
import weakref

import numpy as np

from index.pacing import throttle

MAPPED_FROM_BYTES = 32 << 20  # below this, faults are few and a map per array is not worth it
HUGE_PAGE = 2 << 20
_MADV_COLLAPSE = 25  # Linux 6.1+; Python's mmap module does not name it
_SETTLE_STEP = 32 << 20  # per madvise call: a pace check and a chance to stop between them

_maps: weakref.WeakSet[mmap.mmap] = weakref.WeakSet()  # the private maps ``empty`` made
_libc = ctypes.CDLL(None, use_errno=True)


def empty(shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """An uninitialised, writable array, like ``np.empty``."""
    kind = np.dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64)) * kind.itemsize
    advice = getattr(mmap, "MADV_NOHUGEPAGE", None)
    if size < MAPPED_FROM_BYTES or advice is None:
        return np.empty(shape, dtype=kind)
    region = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    region.madvise(advice)
    _maps.add(region)
    return np.frombuffer(region, dtype=kind).reshape(shape)  # the array keeps the map alive


def settle(array: np.ndarray, upto: int, since: int = 0) -> int:
    """Move bytes ``[since, upto)`` of ``array`` into huge pages, whole huge pages only
    (``MADV_HUGEPAGE`` on them, then ``MADV_COLLAPSE``); returns the offset settled so far,
    to pass as ``since`` next time. Does nothing (returns ``since``) for an array that is not
    one of ``empty``'s maps, or where the kernel refuses (no THP, older than 6.1)."""
    if _map_of(array) is None:
        return since
    start = array.ctypes.data
    # Huge pages are aligned in the address space, not in the array.
    first = -(-(start + since) // HUGE_PAGE) * HUGE_PAGE
    end = (start + min(upto, array.nbytes)) // HUGE_PAGE * HUGE_PAGE
    settled = since
    for at in range(first, end, _SETTLE_STEP):
        size = min(_SETTLE_STEP, end - at)
        for advice in (mmap.MADV_HUGEPAGE, _MADV_COLLAPSE):  # ctypes releases the GIL meanwhile
            if _libc.madvise(ctypes.c_void_p(at), ctypes.c_size_t(size), advice) != 0:
                return settled
        settled = at + size - start
        throttle(size)
    return settled


def _map_of(array: np.ndarray) -> mmap.mmap | None:
    base: object = array
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, memoryview):
        base = base.obj
    return base if isinstance(base, mmap.mmap) and base in _maps else None
