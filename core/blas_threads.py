"""numpy's BLAS threads sleep as soon as a call is done, in every facestream process.

OpenBLAS keeps its worker threads busy-waiting for 2^28 cycles (~0.1 s) after each call, in
case another call follows. So the replica's search of a 1k-face gallery burned ~93 ms of CPU per
identify, on the cores the identify worker's model needed; with the threads sleeping at once,
~6 ms. A lone search pays a thread wake-up instead: a 10k-face scan 20 ms after the previous one
took 2.1-2.3 ms, against 1.1-1.2 ms on threads still spinning, and the same as on one thread.
OpenBLAS reads the setting when it loads, so this must run before numpy is imported; a value
already in the environment wins.
"""

from __future__ import annotations

import os

# 2^4 cycles, OpenBLAS's minimum: sleep at once.
OPENBLAS_THREAD_TIMEOUT = "4"


def sleep_when_idle() -> None:
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", OPENBLAS_THREAD_TIMEOUT)
