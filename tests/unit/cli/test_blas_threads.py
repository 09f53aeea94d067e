"""Every facestream process has numpy's BLAS threads sleep when idle (core/blas_threads.py)."""

from __future__ import annotations

import os
import subprocess
import sys

from core.blas_threads import OPENBLAS_THREAD_TIMEOUT

# A process entered through `cli`: one BLAS call large enough for OpenBLAS to use its threads,
# then the CPU time the process spends while it only sleeps (its BLAS threads spinning, or not).
PROBE = """
import cli, os, resource, time
import numpy as np
rows = np.ones((4000, 512), dtype=np.float32)
np.matmul(np.ones((1, 512), dtype=np.float32), rows.T)
before = resource.getrusage(resource.RUSAGE_SELF)
time.sleep(0.3)
after = resource.getrusage(resource.RUSAGE_SELF)
spent = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
print(os.environ.get("OPENBLAS_THREAD_TIMEOUT"), round(spent * 1000))
"""


def _probe(**env: str) -> tuple[str, int]:
    clean = {
        k: v for k, v in os.environ.items() if k not in {"OPENBLAS_THREAD_TIMEOUT", "OPENBLAS_NUM_THREADS"}
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    timeout, spent_ms = done.stdout.split()
    return timeout, int(spent_ms)


def test_blas_threads_do_not_spin_after_a_call() -> None:
    timeout, spent_ms = _probe()
    assert timeout == OPENBLAS_THREAD_TIMEOUT
    # Spinning, OpenBLAS's threads burn ~100 ms of CPU here after each call (2^28 cycles).
    assert spent_ms < 30


def test_an_operator_setting_wins() -> None:
    assert _probe(OPENBLAS_THREAD_TIMEOUT="12")[0] == "12"
