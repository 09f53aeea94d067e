"""The galleries a deployment holds, folded from the galleries topic: the one place where a
gallery's policies (pack, threshold, quality filters, index) are read from.

Every process that serves galleries keeps this view: the facade (routes, policies, scoped
keys), the workers (a camera's command names only its gallery), the replicas (one index per
gallery, with the gallery's backend), the projector and the eraser. The `default` gallery is
always there, defined by the deployment's settings, so that records and routes from before
galleries keep their meaning.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from core.errors import ErrorCode, FacestreamError
from core.kafka import decode, event_type
from core.settings import Settings
from schemas.events import DEFAULT_GALLERY, GalleryDefined, GalleryDeleted, IndexSpec

GalleryState = Literal["active", "deleting"]


def default_gallery(settings: Settings) -> GalleryDefined:
    return GalleryDefined(
        gallery=DEFAULT_GALLERY,
        description="The deployment's gallery: every route without a gallery acts on it.",
        pack=settings.model_pack,
        index=IndexSpec(backend=settings.index_backend),
    )


def gallery_header(gallery: str) -> str | None:
    """The `gallery` header of a record: absent for the default gallery (as before galleries)."""
    return None if gallery == DEFAULT_GALLERY else gallery


def gallery_of_headers(headers: dict[str, str]) -> str:
    return headers.get("gallery") or DEFAULT_GALLERY


def face_id_for(gallery: str, person_id: str, content_hash: str) -> str:
    """A face's id: the same photo of the same person id is one face per gallery. The default
    gallery keeps the derivation it had before galleries, so existing face ids stay valid."""
    scope = person_id if gallery == DEFAULT_GALLERY else f"{gallery}/{person_id}"
    return hashlib.sha256(f"{scope}\x00{content_hash}".encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Gallery:
    definition: GalleryDefined
    state: GalleryState = "active"
    deletion: GalleryDeleted | None = None

    @property
    def id(self) -> str:
        return self.definition.gallery


class GalleryRegistry:
    """Pure fold of the galleries topic: key = gallery id, value `GalleryDefined` (exists),
    `GalleryDeleted` (being erased) or a tombstone (erased; the id is free again)."""

    def __init__(self, default: GalleryDefined) -> None:
        self._default = Gallery(default)
        self._galleries: dict[str, Gallery] = {}
        self.version = 0  # bumped on every change, for caches of derived state

    def apply(self, record: Any) -> None:
        gallery = (record.key or b"").decode(errors="replace")
        if not gallery or gallery == DEFAULT_GALLERY:
            return
        self.version += 1
        if record.value is None:
            self._galleries.pop(gallery, None)
            return
        kind = event_type(record)
        try:
            if kind == GalleryDefined.__name__:
                self._galleries[gallery] = Gallery(decode(record.value, GalleryDefined).payload)
            elif kind == GalleryDeleted.__name__:
                deletion = decode(record.value, GalleryDeleted).payload
                known = self._galleries.get(gallery)
                definition = known.definition if known else GalleryDefined(gallery=gallery, pack="")
                self._galleries[gallery] = Gallery(definition, "deleting", deletion)
        except FacestreamError:
            # Not ours to judge: the producer validated it; a garbled record changes nothing.
            return

    def get(self, gallery: str) -> Gallery | None:
        if gallery == DEFAULT_GALLERY:
            return self._default
        return self._galleries.get(gallery)

    def active(self, gallery: str) -> GalleryDefined:
        """The gallery's definition, or the error a caller shows (404, or 409 while deleting)."""
        found = self.get(gallery)
        if found is None:
            raise FacestreamError(ErrorCode.UNKNOWN_GALLERY, f"gallery {gallery!r} does not exist")
        if found.state == "deleting":
            raise FacestreamError(ErrorCode.GALLERY_DELETING, f"gallery {gallery!r} is being deleted")
        return found.definition

    def is_active(self, gallery: str) -> bool:
        found = self.get(gallery)
        return found is not None and found.state == "active"

    def all(self) -> list[Gallery]:
        return [self._default, *sorted(self._galleries.values(), key=lambda g: g.id)]
