"""Snapshotting a replica: a consistent view taken between two applied batches, written aside.

The view is the index frozen copy-on-write (``LabelledIndex.frozen``) with the offsets it
reflects, taken while no change is applied (``apply_gate``), which costs the id lists only.
It is written, hashed and fsynced on a thread of its own at a lower CPU priority, paced
(``index.pacing``), holding nothing: searches and applying the log go on meanwhile. A backend
that cannot freeze (every backend but ``faiss-flat`` today) is saved as before, with changes
and searches held back for the duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from core.logging import get_logger
from index.base import Saveable, VectorIndex
from index.labelled import LabelledIndex
from index.pacing import paced
from index.snapshot import write_snapshot
from streams.replica_state import ReplicaState

log = get_logger(__name__)


# Linux: a thread's nice value is its own. At 10 the writer gets ~1/10 of a contended core
# beside a search thread (CFS weights 110 vs 1024); at 19 a busy replica starved it for
# seconds even at 20k faces.
_WRITER_NICE = 10
# Memory bandwidth the writer may take on average (writing, then hashing what it wrote): a flat
# search streams the whole gallery per query, so an unpaced 2 GB snapshot slows the searches
# beside it by half. 1M faces: ~16 s of writing instead of ~4, while nothing waits for it.
_WRITER_BYTES_PER_S = 256 << 20


def _background_priority() -> None:
    """Lower this worker thread's CPU priority: a snapshot mostly takes spare CPU."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed: still no lock
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _WRITER_NICE)


class Snapshotter:
    def __init__(self, state: ReplicaState, directory: Path, topic: str) -> None:
        self.state = state
        self.directory = directory
        self.topic = topic
        self._writer = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="snapshot", initializer=_background_priority
        )

    async def run(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            await self.snapshot()

    async def snapshot(self) -> bool:
        """Write a snapshot if the index changed since the last one; whether one was written."""
        state = self.state
        if not state.applied or state.applied == state.snapshot_offsets:
            return False
        # The view and the offsets it reflects, taken together while no change is applied.
        view, offsets = await state.with_writes_held(lambda index: (_freeze(index), dict(state.applied)))
        if view is None:  # this backend cannot freeze: hold changes and searches back meanwhile
            await state.with_index_held(lambda index: self._write(index, offsets))
        else:
            await asyncio.get_running_loop().run_in_executor(self._writer, self._write_paced, view, offsets)
        state.snapshot_offsets = offsets
        log.info("snapshot_written", offsets=offsets, frozen=view is not None)
        return True

    def write_now(self) -> None:
        """Synchronously, at shutdown (nothing else runs): snapshot if anything changed."""
        state = self.state
        if state.applied and state.applied != state.snapshot_offsets:
            self._write(state.index, dict(state.applied))
            state.snapshot_offsets = dict(state.applied)

    def close(self) -> None:
        self._writer.shutdown(wait=True)

    def _write(self, index: Saveable, offsets: dict[int, int]) -> None:
        write_snapshot(index, self.directory, offsets=offsets, topic=self.topic)

    def _write_paced(self, view: Saveable, offsets: dict[int, int]) -> None:
        with paced(_WRITER_BYTES_PER_S):
            self._write(view, offsets)


def _freeze(index: VectorIndex) -> Saveable | None:
    return index.frozen() if isinstance(index, LabelledIndex) else None
