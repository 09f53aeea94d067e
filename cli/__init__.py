"""The composition root: the `facestream` command and the local-stack supervisor.

It starts every process and so imports every layer; nothing imports it."""

from core.blas_threads import sleep_when_idle
from core.heap import reuse_large_buffers

sleep_when_idle()  # before anything imports numpy (core/blas_threads.py says why)
reuse_large_buffers()  # core/heap.py says why
