"""A process's live view of the galleries topic (`core.galleries.GalleryRegistry`, followed)."""

from __future__ import annotations

import asyncio

from core.follow import TopicFollower
from core.galleries import Gallery, GalleryRegistry, default_gallery
from core.settings import Settings


class GalleryCatalog:
    def __init__(self, settings: Settings) -> None:
        self.registry = GalleryRegistry(default_gallery(settings))
        self._follower = TopicFollower(settings, settings.topics.galleries, self.registry.apply)
        self._started = False
        self._starting = asyncio.Lock()

    async def start(self) -> None:
        """Returns once every gallery defined so far is known (once; later calls return)."""
        async with self._starting:
            if self._started:
                return
            await self._follower.start()
            self._started = True
        await self._follower.read_to_end()

    async def stop(self) -> None:
        if self._started:
            await self._follower.stop()

    async def refresh(self) -> None:
        """Read what was written since (a gallery another facade just created)."""
        await self._follower.read_to_end()

    async def lookup(self, gallery: str) -> Gallery | None:
        """The gallery, reading the topic to its end first when it is not known yet: a record
        of a new gallery may reach a process before the gallery's definition does."""
        await self.start()  # a worker's starts with its warm-up (streams.warm_up), else here
        found = self.registry.get(gallery)
        if found is None:
            await self.refresh()
            found = self.registry.get(gallery)
        return found
