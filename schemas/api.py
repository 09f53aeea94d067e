"""REST bodies of the facade (one model family per entity)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import DEFAULT_GALLERY, GALLERY_ID_PATTERN, BBox, IndexSpec, QualityFilter


class ErrorBody(BaseModel):
    code: str = Field(examples=["no_face"])
    message: str = Field(examples=["no face was found in the image"])
    details: list[dict[str, object]] | None = None


class AcceptedImage(BaseModel):
    filename: str
    face_id: str
    quality: float
    bbox: BBox
    embedding_partition: int | None = None
    embedding_offset: int | None = None


class RejectedImage(BaseModel):
    filename: str
    reason: str = Field(examples=["no_face"])
    message: str


class EnrollResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "person_id": "jane.doe",
                    "enrollment_id": "0f4c2b0d9a7e4f7c8e2a1b3c4d5e6f70",
                    "accepted": [
                        {
                            "filename": "jane1.jpg",
                            "face_id": "6b1f0e3c2d4a5b6c7d8e9f0a1b2c3d4e",
                            "quality": 0.87,
                            "bbox": {"x": 120, "y": 80, "width": 210, "height": 260},
                        }
                    ],
                    "rejected": [
                        {
                            "filename": "group.jpg",
                            "reason": "multiple_faces",
                            "message": "3 faces found",
                        }
                    ],
                }
            ]
        }
    )

    person_id: str
    enrollment_id: str
    model: str
    accepted: list[AcceptedImage]
    rejected: list[RejectedImage]
    offsets: dict[int, int] = Field(
        default={},
        description="Highest embeddings offset per partition: pass as `min_offsets` to /identify "
        "to read your own writes",
    )


class NoAcceptedImage(ErrorBody):
    """422: every image was rejected (`code` is their common reason when they share one, and
    `rejected` lists them), or the request itself is invalid (`details`)."""

    person_id: str | None = None
    rejected: list[RejectedImage] | None = None


class CandidatePublic(BaseModel):
    person_id: str
    similarity: float


class FaceResult(BaseModel):
    """One face of the image: several only under the `all` multi-face policy, largest first."""

    bbox: BBox | None
    person_id: str | None
    similarity: float | None
    unknown: bool
    candidates: list[CandidatePublic]
    quality: float | None = Field(default=None, description="The face's quality score in [0, 1]")
    low_quality: bool = Field(
        default=False, description="The face scored under the quality bar (answered all the same)"
    )


class IdentifyResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "person_id": "jane.doe",
                    "similarity": 0.71,
                    "unknown": False,
                    "threshold": 0.35,
                    "candidates": [
                        {"person_id": "jane.doe", "similarity": 0.71},
                        {"person_id": "john.roe", "similarity": 0.12},
                    ],
                    "model": "default/fr_feature@0.0.1",
                }
            ]
        }
    )

    request_id: str
    person_id: str | None
    similarity: float | None
    unknown: bool
    threshold: float
    candidates: list[CandidatePublic]
    model: str
    bbox: BBox | None = None
    quality: float | None = Field(default=None, description="The face's quality score in [0, 1]")
    low_quality: bool = Field(
        default=False,
        description="The face scored under the `low` quality bar: answered (the request asked for "
        "no filter), but treat the match with care",
    )
    quality_filter: str = Field(default="none", description="The quality filter this request ran under")
    gallery_size: int
    partial: bool = Field(
        default=False,
        description="True when a shard did not answer in time or no ready replica holds some partition",
    )
    shards: list[str] = []
    faces: list[FaceResult] = Field(
        default=[], description="Every face answered (the top-level fields are the first, largest)"
    )
    timings_ms: dict[str, float]


class FacePublic(BaseModel):
    face_id: str
    quality: float
    bbox: BBox | dict[str, float]
    model_id: str
    created_at: datetime


class PersonPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "person_id": "jane.doe",
                    "face_count": 1,
                    "faces": [
                        {
                            "face_id": "6b1f0e3c2d4a5b6c7d8e9f0a1b2c3d4e",
                            "quality": 0.93,
                            "bbox": {"x": 120, "y": 80, "width": 210, "height": 260},
                            "model_id": "default/fr_feature@faceplugin-fr_feature-0.0.1",
                            "created_at": "2026-11-25T14:39:46Z",
                        }
                    ],
                    "created_at": "2026-11-25T14:39:46Z",
                    "updated_at": "2026-11-25T14:39:46Z",
                }
            ]
        }
    )

    person_id: str
    face_count: int
    faces: list[FacePublic]
    created_at: datetime
    updated_at: datetime


class PersonSummaryPublic(BaseModel):
    person_id: str
    face_count: int
    created_at: datetime
    updated_at: datetime


class PersonList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "person_id": "jane.doe",
                            "face_count": 3,
                            "created_at": "2026-11-25T14:39:46Z",
                            "updated_at": "2026-11-25T14:40:02Z",
                        }
                    ],
                    "total": 1,
                    "limit": 100,
                    "offset": 0,
                }
            ]
        }
    )

    items: list[PersonSummaryPublic]
    total: int
    limit: int
    offset: int


class ReplicaPublic(BaseModel):
    replica_id: str
    group: str
    ready: bool
    size: int
    lag: int
    model: str
    backend: str
    restored_from: str
    applied_offsets: dict[int, int]
    snapshot_offsets: dict[int, int]
    seconds_since_heartbeat: float


class ConsumerLagPublic(BaseModel):
    group: str
    topic: str
    partition: int
    committed: int | None
    end: int
    lag: int
    lag_seconds: float


class StatsResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "persons": 13,
                    "faces": 48,
                    "gallery_size": 48,
                    "replicas": [
                        {
                            "replica_id": "replica-1",
                            "group": "replicas",
                            "ready": True,
                            "size": 48,
                            "lag": 0,
                            "model": "default/fr_feature@faceplugin-fr_feature-0.0.1",
                            "backend": "faiss-flat",
                            "restored_from": "snapshot",
                            "applied_offsets": {"0": 17, "1": 15, "2": 16},
                            "snapshot_offsets": {"0": 17, "1": 15, "2": 16},
                            "seconds_since_heartbeat": 0.4,
                        }
                    ],
                    "in_flight": 0,
                    "threshold": 0.45,
                    "model": "default/fr_feature@faceplugin-fr_feature-0.0.1",
                    "consumer_lag": [
                        {
                            "group": "facestream-enroll",
                            "topic": "facestream.enroll.requests.v1",
                            "partition": 0,
                            "committed": 26,
                            "end": 26,
                            "lag": 0,
                            "lag_seconds": 0.0,
                        }
                    ],
                }
            ]
        }
    )

    persons: int | None
    faces: int | None
    gallery_size: int
    replicas: list[ReplicaPublic]
    in_flight: int
    threshold: float
    model: str
    consumer_lag: list[ConsumerLagPublic] = []


class HealthResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "degraded",
                    "live": True,
                    "ready": True,
                    "checks": {"broker": True, "database": False, "replicas": True},
                    "detail": {"replicas": "1 ready of 1 live"},
                }
            ]
        }
    )

    status: Literal["ready", "degraded", "unavailable"]
    live: bool
    ready: bool
    checks: dict[str, bool]
    detail: dict[str, str] = {}


class LogPosition(BaseModel):
    topic: str
    partition: int
    offset: int


class ErasureAccepted(BaseModel):
    """202: the erasure command is on the log. Follow `receipt` until its status is done."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "erasure_id": "9a0c6f3e1b2d4c5e8f7a6b5c4d3e2f10",
                    "kind": "person",
                    "person_id": "jane.doe",
                    "face_id": None,
                    "status": "pending",
                    "command": {"topic": "facestream.enroll.requests.v1", "partition": 2, "offset": 118},
                    "receipt": "/erasures/9a0c6f3e1b2d4c5e8f7a6b5c4d3e2f10",
                }
            ]
        }
    )

    erasure_id: str
    kind: Literal["person", "face", "gallery"]
    gallery: str = DEFAULT_GALLERY
    person_id: str | None = None
    face_id: str | None = None
    status: Literal["pending"] = "pending"
    command: LogPosition
    receipt: str


class TombstonePosition(BaseModel):
    partition: int
    offset: int


class ReplicaProgress(BaseModel):
    replica_id: str
    group: str
    partitions: list[int]
    applied: bool


class ShardProgress(BaseModel):
    """A replica group: applied when every ready replica in it has applied the tombstones."""

    group: str
    partitions: list[int]
    applied: bool


class ErasureReceipt(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "erasure_id": "9a0c6f3e1b2d4c5e8f7a6b5c4d3e2f10",
                    "kind": "person",
                    "person_id": "jane.doe",
                    "face_ids": ["6b1f0e3c2d4a5b6c7d8e9f0a1b2c3d4e"],
                    "status": "done",
                    "waiting_for": [],
                    "requested_at": "2026-11-25T15:02:11Z",
                    "erased_at": "2026-11-25T15:02:11.310Z",
                    "tombstones": [{"partition": 1, "offset": 42}],
                    "shards": [{"group": "replicas", "partitions": [0, 1, 2], "applied": True}],
                    "replicas": [
                        {
                            "replica_id": "replica-1",
                            "group": "replicas",
                            "partitions": [0, 1, 2],
                            "applied": True,
                        }
                    ],
                    "projection_applied": True,
                }
            ]
        }
    )

    """Where an erasure stands. `done`: every ready index replica has applied the face
    tombstones (none can return the faces) and the database projection has applied the
    erasure (the rows are gone)."""

    erasure_id: str
    kind: Literal["person", "face", "gallery"]
    gallery: str = DEFAULT_GALLERY
    person_id: str | None
    face_ids: list[str]
    face_count: int | None = None  # a gallery's erasure lists no ids, only how many
    status: Literal["pending", "done"]
    waiting_for: list[Literal["eraser", "replicas", "projection"]]
    requested_at: datetime | None
    erased_at: datetime | None
    tombstones: list[TombstonePosition]
    shards: list[ShardProgress]
    replicas: list[ReplicaProgress]
    projection_applied: bool
    note: str = (
        "Compaction removes the embedding and image bytes from the log once the tombstones' "
        "segments are cleaned; tombstones themselves stay for delete.retention.ms."
    )


# --- galleries


class GalleryCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "watchlist",
                    "description": "Persons of interest, site A",
                    "threshold": 0.5,
                    "quality_filter_enroll": "medium",
                    "index": {"backend": "faiss-ivfpq", "options": {"nlist": 64, "m": 16}},
                }
            ]
        },
    )

    id: str = Field(pattern=GALLERY_ID_PATTERN, description="1-63 of [a-z0-9_-], starting alphanumeric")
    description: str = Field(default="", max_length=1024)
    pack: str | None = Field(default=None, description="Model pack; default: the deployment's")
    threshold: float | None = Field(default=None, ge=-1.0, le=1.0)
    quality_filter_enroll: QualityFilter | None = None
    quality_filter_identify: QualityFilter | None = None
    index: IndexSpec = IndexSpec()


class GalleryPublic(BaseModel):
    """A gallery with the policies in force (its own, else the deployment's)."""

    id: str
    description: str
    pack: str
    threshold: float
    quality_filter_enroll: QualityFilter
    quality_filter_identify: QualityFilter
    index: IndexSpec
    generation: int
    state: Literal["active", "deleting"]
    created_by: str = ""
    created_at: str = ""
    persons: int | None = None
    faces: int | None = None


class GalleryList(BaseModel):
    galleries: list[GalleryPublic]


class GalleryReplay(BaseModel):
    """202: every replica rebuilds this gallery's index from the log, the others untouched."""

    gallery: str
    generation: int
