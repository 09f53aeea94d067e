"""Pacing a background writer's I/O: a snapshot should take spare memory bandwidth, not the
bandwidth a search needs (a flat search at 1M faces streams 2 GB per query).

    with paced(256 << 20):          # in the writer's own thread
        write_snapshot(view, ...)   # backends and the hasher call throttle(n) per chunk

Outside ``paced`` (tests, the CLI, a replica shutting down) ``throttle`` does nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class _Pace:
    bytes_per_s: float
    started: float
    done: int = 0


_PACE: ContextVar[_Pace | None] = ContextVar("index_io_pace", default=None)


@contextmanager
def paced(bytes_per_s: float | None) -> Iterator[None]:
    """Within this block (this thread), ``throttle`` keeps I/O at ``bytes_per_s`` on average."""
    token = _PACE.set(_Pace(bytes_per_s, time.monotonic()) if bytes_per_s else None)
    try:
        yield
    finally:
        _PACE.reset(token)


def throttle(nbytes: int) -> None:
    """Account ``nbytes`` of I/O; sleep if the block is ahead of its pace."""
    pace = _PACE.get()
    if pace is None:
        return
    pace.done += nbytes
    ahead = pace.done / pace.bytes_per_s - (time.monotonic() - pace.started)
    if ahead > 0:
        time.sleep(ahead)
