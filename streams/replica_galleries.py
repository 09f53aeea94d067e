"""Keeping a replica's galleries in step with the galleries topic.

A gallery deleted (or being deleted) is dropped at once. A gallery whose definition gets a new
``generation`` or ``index`` is rebuilt alone: its records are read from the beginning of the
log (in bulk, on a thread) into a new index of the new spec up to the offsets applied when the
rebuild began; then, with the log held back for a moment, the records applied since are read
too and the new index is swapped in. Every other gallery answers throughout, and so does the
old index of the gallery being rebuilt.
"""

from __future__ import annotations

import asyncio

from core.galleries import GalleryRegistry
from core.logging import get_logger
from core.settings import Settings
from schemas.events import DEFAULT_GALLERY, GalleryDefined
from streams.replay import fold_into
from streams.replica_log import LogFollower
from streams.replica_state import GalleryIndex, ReplicaState

log = get_logger(__name__)


class GalleryKeeper:
    def __init__(self, settings: Settings, state: ReplicaState, follower: LogFollower) -> None:
        self.settings = settings
        self.state = state
        self.follower = follower

    async def reconcile(self, registry: GalleryRegistry) -> None:
        """Drop the galleries gone, rebuild those with a new definition (one at a time)."""
        for name, held in list(self.state.galleries.items()):
            if name == DEFAULT_GALLERY:
                continue
            found = registry.get(name)
            if found is None or found.state != "active":
                if await self.state.drop(name):
                    log.info("gallery_dropped", gallery=name)
                continue
            if held.outdated(found.definition, self.settings.index_backend):
                await self.rebuild(found.definition)

    async def rebuild(self, definition: GalleryDefined) -> GalleryIndex | None:
        """Replay of one gallery: a new index from the log, swapped in; the others answer."""
        gallery = definition.gallery
        fresh = self.follower.new_index(definition)
        if fresh is None:
            return None
        log.info("gallery_rebuild_started", gallery=gallery, generation=definition.generation)
        state = self.state
        cut = dict(state.applied)
        zeros = dict.fromkeys(cut, 0)
        await asyncio.to_thread(
            fold_into, self.settings, fresh.index, gallery=gallery, starts=zeros, ends=cut
        )
        async with state.apply_gate:  # what was applied since the cut, then the swap
            now = dict(state.applied)
            await asyncio.to_thread(
                fold_into, self.settings, fresh.index, gallery=gallery, starts=cut, ends=now
            )
            async with state.index_lock:
                state.swap(gallery, fresh)
        log.info("gallery_rebuilt", gallery=gallery, size=len(fresh.index), backend=fresh.index.backend)
        return fresh
