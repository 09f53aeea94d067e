"""A replica's index state: the index, the log offsets it reflects, and who may touch it when.

Two locks, so that nothing slow holds what a search needs:
  * ``index_lock``: a change to the index and a search exclude each other (an index is not
    thread-safe), each held only for the change or the search itself;
  * ``apply_gate``: held by whoever applies the log, and by a snapshot while it takes its
    consistent view. Searches never take it, so a snapshot never makes a search wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import numpy as np

from index.base import PersonMatch, VectorIndex, search_persons
from index.labelled import LabelledIndex
from streams.log_fold import PendingChanges

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SearchResult:
    matches: list[list[PersonMatch]]
    gallery_size: int
    search_ms: float  # the search alone, measured where it ran: no lock wait, no thread hop


@dataclass
class ReplicaState:
    index: VectorIndex
    applied: dict[int, int] = field(default_factory=dict)  # partition -> next offset to read
    target: dict[int, int] = field(default_factory=dict)  # high-water marks seen at startup
    end_offsets: dict[int, int] = field(default_factory=dict)
    snapshot_offsets: dict[int, int] = field(default_factory=dict)
    restored_from: Literal["snapshot", "log"] = "log"
    total_partitions: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    applied_changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    index_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    apply_gate: asyncio.Lock = field(default_factory=asyncio.Lock)

    # --- applying the log

    async def apply(self, pending: PendingChanges, positions: dict[int, int]) -> None:
        """Apply folded changes and record the log positions they bring the index to."""
        async with self.apply_gate:
            if pending.upserts or pending.removals:
                if isinstance(self.index, LabelledIndex):
                    # Any copying (rows shared with a frozen snapshot or a mapped file, growth)
                    # happens here, beside the searches, not under their lock.
                    await asyncio.to_thread(self.index.prepare_changes, pending.upserts, pending.removals)
                async with self.index_lock:
                    await asyncio.to_thread(pending.apply, self.index)
            self.applied.update(positions)
        async with self.applied_changed:
            self.applied_changed.notify_all()
        self.check_ready()

    def check_ready(self) -> bool:
        if not self.ready.is_set() and all(self.applied.get(p, 0) >= end for p, end in self.target.items()):
            self.ready.set()
            return True
        return False

    @property
    def lag(self) -> int:
        """Embedding records between what this replica applied and the log's end."""
        return sum(max(end - self.applied.get(p, 0), 0) for p, end in self.end_offsets.items())

    # --- reading it

    def has_applied(self, wanted: dict[int, int]) -> bool:
        """Whether the records at ``wanted`` offsets of this replica's partitions are applied.

        Offsets of partitions this replica does not hold (another shard's) do not count.
        """
        return all(self.applied.get(p, 0) > offset for p, offset in wanted.items() if p in self.target)

    async def caught_up(self, wanted: dict[int, int], timeout_s: float) -> bool:
        """Read-your-writes: wait (bounded) until ``has_applied(wanted)``."""
        if self.has_applied(wanted):
            return True
        try:
            async with self.applied_changed:
                await asyncio.wait_for(
                    self.applied_changed.wait_for(lambda: self.has_applied(wanted)), timeout_s
                )
            return True
        except TimeoutError:
            return False

    async def search(self, vectors: np.ndarray, k: int) -> SearchResult:
        """Top-``k`` persons for each row of ``vectors``, as one batch."""
        async with self.index_lock:
            return await asyncio.to_thread(_timed, lambda: search_persons(self.index, vectors, k), self.index)

    async def with_writes_held(self, job: Callable[[VectorIndex], T]) -> T:
        """Run ``job`` on the index in a thread while no change is applied; searches go on."""
        async with self.apply_gate:
            return await asyncio.to_thread(job, self.index)

    async def with_index_held(self, job: Callable[[VectorIndex], T]) -> T:
        """Run ``job`` on the index in a thread with changes and searches held back: for a
        backend whose save may not run beside a search (the embedded stores)."""
        async with self.apply_gate, self.index_lock:
            return await asyncio.to_thread(job, self.index)


def _timed(search: Callable[[], list[list[PersonMatch]]], index: VectorIndex) -> SearchResult:
    started = time.perf_counter()
    matches = search()
    return SearchResult(matches, len(index), (time.perf_counter() - started) * 1000)
