"""Which commands a worker acts on: those of an active gallery, each with its gallery's model
pack. A camera's command that names only its gallery gets the gallery's policies here, the
stage that accepted it; the facade's commands arrive with them resolved."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

from core.errors import ErrorCode, FacestreamError
from core.galleries import Gallery, GalleryRegistry, default_gallery
from core.settings import Settings
from schemas.envelope import Envelope

Lookup = Callable[[str], Awaitable[Gallery | None]]


def static_lookup(settings: Settings) -> Lookup:
    """The default gallery only: for a worker without a galleries topic to follow (tests)."""
    registry = GalleryRegistry(default_gallery(settings))

    async def lookup(gallery: str) -> Gallery | None:
        return registry.get(gallery)

    return lookup


class GalleryGate:
    def __init__(self, lookup: Lookup, *, operation: Literal["enroll", "identify"]) -> None:
        self.lookup = lookup
        self.operation = operation

    async def admit(
        self, envelopes: Sequence[Envelope[Any]]
    ) -> tuple[list[Envelope[Any]], list[str], dict[int, FacestreamError]]:
        """The envelopes with their gallery's policies filled in, the pack of each, and the
        refusal of each one (by position) that names no active gallery."""
        admitted: list[Envelope[Any]] = []
        packs: list[str] = []
        refused: dict[int, FacestreamError] = {}
        for position, envelope in enumerate(envelopes):
            command = envelope.payload
            gallery = await self.lookup(command.gallery)
            if gallery is None:
                refused[position] = FacestreamError(
                    ErrorCode.UNKNOWN_GALLERY, f"gallery {command.gallery!r} does not exist"
                )
            elif gallery.state != "active":
                refused[position] = FacestreamError(
                    ErrorCode.GALLERY_DELETING, f"gallery {command.gallery!r} is being deleted"
                )
            admitted.append(self._with_policies(envelope, gallery) if gallery else envelope)
            packs.append(gallery.definition.pack if gallery else "")
        return admitted, packs, refused

    def _with_policies(self, envelope: Envelope[Any], gallery: Gallery) -> Envelope[Any]:
        command = envelope.payload
        definition = gallery.definition
        updates: dict[str, Any] = {}
        if command.quality_filter is None:
            chosen = (
                definition.quality_filter_enroll
                if self.operation == "enroll"
                else definition.quality_filter_identify
            )
            if chosen is not None:
                updates["quality_filter"] = chosen
        if self.operation == "identify" and command.threshold is None and definition.threshold is not None:
            updates["threshold"] = definition.threshold
        if not updates:
            return envelope
        return envelope.model_copy(update={"payload": command.model_copy(update=updates)})
