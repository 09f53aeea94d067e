"""Whose faces the embeddings log holds: the eraser's view, folded from keys and headers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.galleries import gallery_of_headers
from core.kafka import decode, header_map, key_text
from schemas.envelope import Header
from schemas.events import DEFAULT_GALLERY, FaceEmbedded


@dataclass(frozen=True)
class Placement:
    person_id: str
    partition: int
    offset: int
    gallery: str = DEFAULT_GALLERY


@dataclass
class FaceOwners:
    """face id -> (gallery, person, where its current record is), and (gallery, person) ->
    face ids, and gallery -> face ids."""

    placements: dict[str, Placement] = field(default_factory=dict)
    faces: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    galleries: dict[str, set[str]] = field(default_factory=dict)

    def apply(self, record: Any) -> Placement | None:
        """One embeddings record: a value places a face (returned), a tombstone removes it.
        A record whose person cannot be read raises FacestreamError (dead-letter material)."""
        face_id = key_text(record.key)
        self._drop(face_id)
        if record.value is None:
            return None
        headers = header_map(record.headers)
        person_id = headers.get(Header.PERSON_ID)
        gallery = gallery_of_headers(headers)
        if person_id is None:  # written before the header existed
            fact = decode(record.value, FaceEmbedded).payload
            person_id, gallery = fact.person_id, fact.gallery
        placement = Placement(person_id, record.partition, record.offset, gallery)
        self.placements[face_id] = placement
        self.faces.setdefault((gallery, person_id), set()).add(face_id)
        self.galleries.setdefault(gallery, set()).add(face_id)
        return placement

    def faces_of(
        self, person_id: str, *, below: Mapping[int, int], gallery: str = DEFAULT_GALLERY
    ) -> list[str]:
        """The person's faces in the gallery whose records lie below the barrier: enrolled
        before the erasure. A partition the barrier does not name holds none of them."""
        return sorted(
            face_id
            for face_id in self.faces.get((gallery, person_id), ())
            if (p := self.placements[face_id]).offset < below.get(p.partition, 0)
        )

    def faces_in(self, gallery: str) -> list[str]:
        return sorted(self.galleries.get(gallery, ()))

    def owner_of(self, face_id: str) -> str | None:
        placement = self.placements.get(face_id)
        return placement.person_id if placement else None

    def placement_of(self, face_id: str) -> Placement | None:
        return self.placements.get(face_id)

    def _drop(self, face_id: str) -> None:
        placement = self.placements.pop(face_id, None)
        if placement is None:
            return
        _discard(self.faces, (placement.gallery, placement.person_id), face_id)
        _discard(self.galleries, placement.gallery, face_id)

    def __len__(self) -> int:
        return len(self.placements)


def _discard(index: dict[Any, set[str]], key: Any, face_id: str) -> None:
    remaining = index.get(key)
    if remaining is not None:
        remaining.discard(face_id)
        if not remaining:
            del index[key]
