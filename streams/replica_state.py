"""A replica's index state: one index per gallery, the log offsets they reflect, and who may
touch them when.

Two locks, so that nothing slow holds what a search needs:
  * ``index_lock``: a change to the index and a search exclude each other (an index is not
    thread-safe), each held only for the change or the search itself;
  * ``apply_gate``: held by whoever applies the log, and by a snapshot while it takes its
    consistent view. Searches never take it, so a snapshot never makes a search wait.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np

from index.base import PersonMatch, VectorIndex, search_persons
from index.labelled import LabelledIndex
from schemas.events import DEFAULT_GALLERY, GalleryDefined
from streams.log_fold import FoldedBatch, PendingChanges

T = TypeVar("T")

# Up to this many scores (faces x queries), a search runs on the event loop. 4-6k faces at 512-d
# took 1.1-1.4 ms here; the hop into an executor thread alone took 0.48 ms p50 in the identify
# worker beside the stack, and the query's way into the replica went 4.2-5.4 -> 3.5 ms p50.
INLINE_SEARCH_SCORES = 8_192


@dataclass
class GalleryIndex:
    """One gallery's index in this replica, with the definition it was built from."""

    index: VectorIndex
    generation: int = 0
    options: dict[str, Any] = field(default_factory=dict)

    def outdated(self, definition: GalleryDefined, default_backend: str) -> bool:
        """Whether the gallery's definition asks for another index than this one: a new
        generation, another backend, other options (a replay of the gallery)."""
        spec = definition.index
        if (self.generation, self.index.backend) != (definition.generation, spec.backend or default_backend):
            return True
        return bool(spec.options) and dict(spec.options) != self.options


@dataclass(frozen=True, slots=True)
class SearchResult:
    matches: list[list[PersonMatch]]
    gallery_size: int
    search_ms: float  # the search alone, measured where it ran: no lock wait, no thread hop


class ReplicaState:
    """The galleries' indexes (one per gallery), the log offsets they reflect, and the locks.

    ``gallery_of`` remembers the gallery of every face outside the default gallery: a tombstone
    carries only its key, and is routed by it (absent: the default gallery).
    """

    def __init__(
        self,
        index: VectorIndex | None = None,
        *,
        galleries: dict[str, GalleryIndex] | None = None,
        applied: dict[int, int] | None = None,
        target: dict[int, int] | None = None,
    ) -> None:
        self.galleries: dict[str, GalleryIndex] = dict(galleries or {})
        if index is not None:
            self.galleries[DEFAULT_GALLERY] = GalleryIndex(index)
        self.gallery_of: dict[str, str] = {}
        self.applied: dict[int, int] = dict(applied or {})  # partition -> next offset to read
        self.target: dict[int, int] = dict(target or {})  # high-water marks seen at startup
        self.end_offsets: dict[int, int] = {}
        self.snapshot_offsets: dict[int, int] = {}
        self.restored_from: Literal["snapshot", "log"] = "log"
        self.total_partitions = 0
        self.ready = asyncio.Event()
        self.applied_changed = asyncio.Condition()
        self.index_lock = asyncio.Lock()
        self.apply_gate = asyncio.Lock()

    # --- the galleries

    @property
    def index(self) -> VectorIndex:
        """The default gallery's index."""
        return self.galleries[DEFAULT_GALLERY].index

    def __len__(self) -> int:
        return sum(len(g.index) for g in self.galleries.values())

    def sizes(self) -> dict[str, int]:
        return {name: len(g.index) for name, g in sorted(self.galleries.items())}

    def expect(self, gallery: str) -> tuple[str, int] | None:
        """The model id and dim of the gallery's index; None for a gallery not held here."""
        held = self.galleries.get(gallery)
        return None if held is None else (held.index.model_id, held.index.dim)

    def wanted(self) -> dict[str, tuple[str, int]]:
        """``expect`` of every gallery held now."""
        return {name: (g.index.model_id, g.index.dim) for name, g in self.galleries.items()}

    def restore(self, indexes: dict[str, GalleryIndex]) -> None:
        """Take these indexes as they are (a snapshot's), remembering their faces' galleries."""
        self.galleries = dict(indexes)
        self.gallery_of = {}
        for name, held in indexes.items():
            if name != DEFAULT_GALLERY:
                self.gallery_of.update(dict.fromkeys(_face_ids(held.index), name))

    def hold(self, gallery: str, held: GalleryIndex) -> None:
        """Start holding a gallery (empty): its records are indexed from now on."""
        self.galleries.setdefault(gallery, held)

    async def drop(self, gallery: str) -> bool:
        """Stop holding a gallery (deleted): its index goes at once."""
        async with self.apply_gate, self.index_lock:
            held = self.galleries.pop(gallery, None)
            if held is not None and gallery != DEFAULT_GALLERY:
                for face_id in _face_ids(held.index):
                    self.gallery_of.pop(face_id, None)
        return held is not None

    def swap(self, gallery: str, held: GalleryIndex) -> None:
        """Replace a gallery's index by a rebuilt one. The caller holds ``apply_gate`` and
        ``index_lock``; the rebuilt index reflects ``applied``."""
        old = self.galleries.get(gallery)
        if gallery != DEFAULT_GALLERY:
            if old is not None:
                for face_id in _face_ids(old.index):
                    self.gallery_of.pop(face_id, None)
            self.gallery_of.update(dict.fromkeys(_face_ids(held.index), gallery))
        self.galleries[gallery] = held

    # --- applying the log

    async def apply(self, changes: PendingChanges | FoldedBatch, positions: dict[int, int]) -> None:
        """Apply folded changes and record the log positions they bring the indexes to."""
        batch = changes.folded() if isinstance(changes, PendingChanges) else changes
        async with self.apply_gate:
            if len(batch):
                removals: dict[str, list[str]] = {}
                for face_id in batch.removals:
                    removals.setdefault(self.gallery_of.get(face_id, DEFAULT_GALLERY), []).append(face_id)
                touched = [g for g in {*batch.upserts, *removals} if g in self.galleries]
                for gallery in touched:
                    index = self.galleries[gallery].index
                    if isinstance(index, LabelledIndex):
                        # Any copying (rows shared with a frozen snapshot or a mapped file,
                        # growth) happens here, beside the searches, not under their lock.
                        upserts = batch.upserts.get(gallery)
                        faces = upserts.faces if upserts is not None else []
                        await asyncio.to_thread(index.prepare_changes, faces, removals.get(gallery, []))
                async with self.index_lock:
                    await asyncio.to_thread(self._apply, batch, removals, touched)
            self.applied.update(positions)
        async with self.applied_changed:
            self.applied_changed.notify_all()
        self.check_ready()

    def _apply(self, batch: FoldedBatch, removals: dict[str, list[str]], touched: list[str]) -> None:
        for gallery in touched:
            index = self.galleries[gallery].index
            gone = removals.get(gallery)
            if gone:
                index.remove(gone)
                if gallery != DEFAULT_GALLERY:
                    for face_id in gone:
                        self.gallery_of.pop(face_id, None)
            upserts = batch.upserts.get(gallery)
            if upserts is not None and len(upserts):
                index.add(upserts.faces, upserts.persons, upserts.vectors)
                if gallery != DEFAULT_GALLERY:
                    self.gallery_of.update(dict.fromkeys(upserts.faces, gallery))

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

    async def search(self, vectors: np.ndarray, k: int, gallery: str = DEFAULT_GALLERY) -> SearchResult:
        """Top-``k`` persons of ``gallery`` for each row of ``vectors``, as one batch; nothing
        (and a size of 0) for a gallery this replica does not hold."""
        async with self.index_lock:
            held = self.galleries.get(gallery)
            if held is None:
                return SearchResult([[] for _ in range(len(vectors))], 0, 0.0)
            index = held.index
            search = functools.partial(search_persons, index, vectors, k)
            if len(index) * len(vectors) <= INLINE_SEARCH_SCORES:
                return _timed(search, index)
            return await asyncio.to_thread(_timed, search, index)

    async def with_writes_held(self, job: Callable[[dict[str, GalleryIndex]], T]) -> T:
        """Run ``job`` on the galleries in a thread while no change is applied; searches go on."""
        async with self.apply_gate:
            return await asyncio.to_thread(job, dict(self.galleries))

    async def with_index_held(self, job: Callable[[dict[str, GalleryIndex]], T]) -> T:
        """Run ``job`` on the galleries in a thread with changes and searches held back: for a
        backend whose save may not run beside a search (the embedded stores)."""
        async with self.apply_gate, self.index_lock:
            return await asyncio.to_thread(job, dict(self.galleries))


def _face_ids(index: VectorIndex) -> list[str]:
    return index.face_ids() if isinstance(index, LabelledIndex) else []


def _timed(search: Callable[[], list[list[PersonMatch]]], index: VectorIndex) -> SearchResult:
    started = time.perf_counter()
    matches = search()
    return SearchResult(matches, len(index), (time.perf_counter() - started) * 1000)
