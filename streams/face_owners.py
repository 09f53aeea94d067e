"""Whose faces the embeddings log holds: the eraser's view, folded from keys and headers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.kafka import decode, header_map
from schemas.envelope import Header
from schemas.events import FaceEmbedded


@dataclass(frozen=True)
class Placement:
    person_id: str
    partition: int
    offset: int


@dataclass
class FaceOwners:
    """face id -> (person, where its current record is), and person -> face ids."""

    placements: dict[str, Placement] = field(default_factory=dict)
    faces: dict[str, set[str]] = field(default_factory=dict)

    def apply(self, record: Any) -> None:
        """One embeddings record: a value places a face, a tombstone removes it. A record
        whose person cannot be read raises FacestreamError (dead-letter material)."""
        face_id = (record.key or b"").decode()
        self._drop(face_id)
        if record.value is None:
            return
        person_id = header_map(record.headers).get(Header.PERSON_ID)
        if person_id is None:  # written before the header existed
            person_id = decode(record.value, FaceEmbedded).payload.person_id
        self.placements[face_id] = Placement(person_id, record.partition, record.offset)
        self.faces.setdefault(person_id, set()).add(face_id)

    def faces_of(self, person_id: str, *, below: Mapping[int, int]) -> list[str]:
        """The person's faces whose records lie below the barrier: enrolled before the
        erasure. A partition the barrier does not name holds none of them."""
        return sorted(
            face_id
            for face_id in self.faces.get(person_id, ())
            if (p := self.placements[face_id]).offset < below.get(p.partition, 0)
        )

    def owner_of(self, face_id: str) -> str | None:
        placement = self.placements.get(face_id)
        return placement.person_id if placement else None

    def _drop(self, face_id: str) -> None:
        placement = self.placements.pop(face_id, None)
        if placement is not None:
            remaining = self.faces.get(placement.person_id)
            if remaining is not None:
                remaining.discard(face_id)
                if not remaining:
                    del self.faces[placement.person_id]

    def __len__(self) -> int:
        return len(self.placements)
