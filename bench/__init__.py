"""Benchmarks. Their processes run numpy's BLAS as facestream's own do (core/blas_threads.py)."""

from core.blas_threads import sleep_when_idle

sleep_when_idle()
