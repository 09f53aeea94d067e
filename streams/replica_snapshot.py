"""Snapshotting a replica: a consistent view taken between two applied batches, written aside.

The view is the index frozen copy-on-write (``LabelledIndex.frozen``) with the offsets it
reflects, taken while no change is applied (``apply_gate``), which costs the id lists only.
It is written, hashed and fsynced on a thread of its own at a lower CPU priority, paced
(``index.pacing``), holding nothing: searches and applying the log go on meanwhile. The same
thread then settles what the indexes wrote since the last snapshot (``LabelledIndex.settle``:
``faiss-flat``'s rows into huge pages, which its searches scan faster). A backend
that cannot freeze (every backend but ``faiss-flat`` today) is saved as before, with changes
and searches held back for the duration. One snapshot holds every gallery's index.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from core.logging import get_logger
from index.base import Saveable
from index.labelled import LabelledIndex
from index.pacing import paced
from index.snapshot import write_snapshot
from streams.replica_state import GalleryIndex, ReplicaState

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
        # The views and the offsets they reflect, taken together while no change is applied.
        view, offsets = await state.with_writes_held(
            lambda galleries: (_freeze(galleries), dict(state.applied))
        )
        if view is None:  # a backend that cannot freeze: hold changes and searches back meanwhile
            await state.with_index_held(lambda galleries: self._write(_as_saved(galleries), offsets))
        else:
            await asyncio.get_running_loop().run_in_executor(self._writer, self._write_paced, view, offsets)
        state.snapshot_offsets = offsets
        log.info("snapshot_written", offsets=offsets, frozen=view is not None)
        indexes = [held.index for held in state.galleries.values() if isinstance(held.index, LabelledIndex)]
        settled = await asyncio.get_running_loop().run_in_executor(self._writer, _settle_paced, indexes)
        log.info("indexes_settled", settled_bytes=settled)
        return True

    def write_now(self) -> None:
        """Synchronously, at shutdown (nothing else runs): snapshot if anything changed."""
        state = self.state
        if state.applied and state.applied != state.snapshot_offsets:
            self._write(_as_saved(state.galleries), dict(state.applied))
            state.snapshot_offsets = dict(state.applied)

    def close(self) -> None:
        self._writer.shutdown(wait=True)

    def _write(self, view: Galleries, offsets: dict[int, int]) -> None:
        indexes, generations, options = view
        write_snapshot(
            indexes,
            self.directory,
            offsets=offsets,
            topic=self.topic,
            generations=generations,
            options=options,
        )

    def _write_paced(self, view: Galleries, offsets: dict[int, int]) -> None:
        with paced(_WRITER_BYTES_PER_S):
            self._write(view, offsets)


def _settle_paced(indexes: list[LabelledIndex]) -> int:
    with paced(_WRITER_BYTES_PER_S):
        return sum(index.settle() for index in indexes)


# Each gallery's index (or a frozen view of it), its generation and its index options.
Galleries = tuple[dict[str, Saveable], dict[str, int], dict[str, dict[str, Any]]]


def _as_saved(galleries: dict[str, GalleryIndex]) -> Galleries:
    return {g: held.index for g, held in galleries.items()}, *_definitions(galleries)


def _definitions(galleries: dict[str, GalleryIndex]) -> tuple[dict[str, int], dict[str, dict[str, Any]]]:
    return {g: held.generation for g, held in galleries.items()}, {
        g: held.options for g, held in galleries.items()
    }


def _freeze(galleries: dict[str, GalleryIndex]) -> Galleries | None:
    """Every gallery frozen copy-on-write; None if one of them cannot be."""
    views: dict[str, Saveable] = {}
    for gallery, held in galleries.items():
        view = held.index.frozen() if isinstance(held.index, LabelledIndex) else None
        if view is None:
            return None
        views[gallery] = view
    return views, *_definitions(galleries)
