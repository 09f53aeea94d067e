"""The composition root: the `facestream` command and the local-stack supervisor.

It starts every process and so imports every layer; nothing imports it."""

from core.blas_threads import sleep_when_idle

sleep_when_idle()  # before anything imports numpy (core/blas_threads.py says why)
