"""What queries return: frozen plain values, never ORM rows bound to a session."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from schemas.events import BBox, Embedding


@dataclass(frozen=True, slots=True)
class FaceSummary:
    face_id: str
    quality: float
    det_score: float
    bbox: BBox
    model_id: str
    enrollment_id: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class FaceRecord:
    face_id: str
    gallery: str
    person_id: str
    enrollment_id: str
    embedding: Embedding
    quality: float
    det_score: float
    bbox: BBox
    content_hash: str
    image_path: str | None
    filename: str
    source_topic: str
    source_partition: int
    source_offset: int
    created_at: datetime
    updated_at: datetime

    @property
    def model_id(self) -> str:
        return self.embedding.model.id


@dataclass(frozen=True, slots=True)
class PersonSummary:
    gallery: str
    person_id: str
    display_name: str | None
    face_count: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PersonRecord:
    gallery: str
    person_id: str
    display_name: str | None
    metadata: Mapping[str, Any]
    face_count: int
    faces: tuple[FaceSummary, ...]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ImageOutcome:
    image_index: int
    filename: str
    status: Literal["accepted", "rejected"]
    face_id: str | None = None
    quality: float | None = None
    bbox: BBox | None = None
    reason: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class EnrollmentRecord:
    enrollment_id: str
    gallery: str
    person_id: str
    image_count: int
    accepted_count: int
    rejected_count: int
    status: Literal["pending", "complete"]
    outcomes: tuple[ImageOutcome, ...]  # the outcomes received so far, by image_index
    created_at: datetime
    updated_at: datetime

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    @property
    def missing_indexes(self) -> tuple[int, ...]:
        seen = {o.image_index for o in self.outcomes}
        return tuple(i for i in range(self.image_count) if i not in seen)


@dataclass(frozen=True, slots=True)
class GalleryRecord:
    """A gallery as projected. Empty `pack` / `index_backend` and None threshold or quality
    filters mean the deployment's defaults (always so for the `default` gallery)."""

    gallery: str
    description: str
    pack: str
    threshold: float | None
    quality_filter_enroll: str | None
    quality_filter_identify: str | None
    index_backend: str
    index_options: Mapping[str, Any]
    generation: int
    state: Literal["active", "deleting"]
    created_by: str
    person_count: int
    face_count: int
    created_at: datetime
    updated_at: datetime
