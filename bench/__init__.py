"""Benchmarks. Their processes run numpy's BLAS and malloc as facestream's own do
(core/blas_threads.py, core/heap.py): a baseline measured without them would not be the same work."""

from core.blas_threads import sleep_when_idle
from core.heap import reuse_large_buffers

sleep_when_idle()
reuse_large_buffers()
