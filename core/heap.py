"""Freed large buffers are reused, not handed back to the kernel, in every facestream process.

glibc's malloc serves a request above its mmap threshold (128 KiB at start, raised to the
largest mapped chunk freed so far) with a fresh mapping, and hands a heap's free top back to the
kernel once it exceeds the trim threshold (twice the mmap threshold). A photo's bytes (0.1-2.5
MB here) are copied a few times on their way (HTTP body, upload, record, librdkafka's buffer)
and decoded into arrays of several MB: with those defaults most of them land on fresh pages
again on every request, and each first touch of a page is a fault (~2 microseconds each in
this VM). Measured here: three copies of a 2.4 MB photo took 3.9 ms p50 with 1,777 page faults,
against 0.6 ms and none with the thresholds below; in a py-spy profile of the facade under
2.4 MB identifies, 29% of its main thread's busy samples were in such copies (the upload read,
the record encode, librdkafka's produce).

So the thresholds are fixed (``mallopt``, which also ends their dynamic adjustment): only
requests over 32 MiB (glibc's ceiling for the mmap threshold) get a mapping of their own, and a
heap keeps up to 128 MiB of free memory at its top. The cost: a process holds on to that much
memory after a peak instead of returning it. An operator's own setting in the environment
(``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, ``GLIBC_TUNABLES``) wins; on a C library
without ``mallopt`` (musl, macOS) nothing changes.
"""

from __future__ import annotations

import ctypes
import os

MMAP_THRESHOLD_BYTES = 32 << 20
TRIM_THRESHOLD_BYTES = 128 << 20
_M_TRIM_THRESHOLD = -1  # glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_OPERATOR_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def reuse_large_buffers() -> bool:
    """Whether the thresholds were set (False: the operator's stand, or no glibc)."""
    if any(name in os.environ for name in _OPERATOR_SETTINGS):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
