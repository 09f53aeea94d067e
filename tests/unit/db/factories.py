"""Event factories for the db tests (shared by the SQLite and PostgreSQL suites)."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.events import (
    BBox,
    Embedding,
    FaceEmbedded,
    GalleryDefined,
    GalleryDeleted,
    ImageEnrolled,
    IndexSpec,
    ModelInfo,
)

TOPIC = "facestream.face.embeddings.v1"
OUTCOMES_TOPIC = "facestream.enrollment.outcomes.v1"
GALLERIES_TOPIC = "facestream.galleries.v1"
MODEL = ModelInfo(pack="default", recognizer="fr_feature", version="1", dim=4)
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def vector(*values: float) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def face_embedded(face_id: str = "f1", person_id: str = "p1", **overrides: Any) -> FaceEmbedded:
    fields: dict[str, Any] = {
        "face_id": face_id,
        "person_id": person_id,
        "enrollment_id": "e1",
        "embedding": Embedding(model=MODEL, vector_f32le=vector(1.0, 0.0, 0.0, 0.0)),
        "quality": 0.9,
        "det_score": 0.95,
        "bbox": BBox(x=1.0, y=2.0, width=30.0, height=40.0),
        "content_hash": f"sha256:{face_id}",
        "filename": f"{face_id}.jpg",
    }
    fields.update(overrides)
    return FaceEmbedded(**fields)


def image_enrolled(
    image_index: int,
    status: str = "accepted",
    *,
    enrollment_id: str = "e1",
    person_id: str = "p1",
    image_count: int = 3,
    **overrides: Any,
) -> ImageEnrolled:
    fields: dict[str, Any] = {
        "enrollment_id": enrollment_id,
        "person_id": person_id,
        "image_index": image_index,
        "image_count": image_count,
        "filename": f"img{image_index}.jpg",
        "status": status,
        "model": "default/fr_feature@test",
    }
    if status == "accepted":
        fields.update(face_id=f"f{image_index}", quality=0.8, bbox=BBox(x=0, y=0, width=10, height=10))
    else:
        fields.update(reason="no_face", message="no face found")
    fields.update(overrides)
    return ImageEnrolled(**fields)


def gallery_defined(gallery: str = "vip", **overrides: Any) -> GalleryDefined:
    fields: dict[str, Any] = {
        "gallery": gallery,
        "description": f"the {gallery} gallery",
        "pack": "buffalo_l",
        "threshold": 0.42,
        "quality_filter_enroll": "high",
        "quality_filter_identify": "none",
        "index": IndexSpec(backend="faiss-ivfpq", options={"nlist": 64, "m": 8}),
        "generation": 1,
        "created_by": "admin",
        "created_at": "2026-01-02T03:04:05+00:00",
    }
    fields.update(overrides)
    return GalleryDefined(**fields)


def gallery_deleted(gallery: str = "vip", **overrides: Any) -> GalleryDeleted:
    fields: dict[str, Any] = {"gallery": gallery, "erasure_id": f"erase-{gallery}", "requested_by": "admin"}
    fields.update(overrides)
    return GalleryDeleted(**fields)
