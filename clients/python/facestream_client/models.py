"""Typed results: frozen dataclasses built from the API's JSON bodies."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Json = dict[str, Any]


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True)
class BBox:
    x: float
    y: float
    width: float
    height: float

    @classmethod
    def from_json(cls, data: Json) -> BBox:
        return cls(float(data["x"]), float(data["y"]), float(data["width"]), float(data["height"]))


@dataclass(frozen=True)
class AcceptedImage:
    filename: str
    face_id: str
    quality: float
    bbox: BBox

    @classmethod
    def from_json(cls, data: Json) -> AcceptedImage:
        return cls(data["filename"], data["face_id"], float(data["quality"]), BBox.from_json(data["bbox"]))


@dataclass(frozen=True)
class RejectedImage:
    filename: str
    reason: str
    message: str = ""

    @classmethod
    def from_json(cls, data: Json) -> RejectedImage:
        return cls(data["filename"], data["reason"], data.get("message", ""))


@dataclass(frozen=True)
class EnrollResult:
    person_id: str
    enrollment_id: str
    model: str
    accepted: list[AcceptedImage]
    rejected: list[RejectedImage]
    #: Highest embeddings offset per partition: pass to `identify(min_offsets=...)` to read
    #: your own writes (only replicas that applied them answer).
    offsets: dict[int, int] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Json) -> EnrollResult:
        return cls(
            person_id=data["person_id"],
            enrollment_id=data["enrollment_id"],
            model=data["model"],
            accepted=[AcceptedImage.from_json(a) for a in data["accepted"]],
            rejected=[RejectedImage.from_json(r) for r in data["rejected"]],
            offsets={int(p): int(o) for p, o in (data.get("offsets") or {}).items()},
        )


@dataclass(frozen=True)
class Candidate:
    person_id: str
    similarity: float


@dataclass(frozen=True)
class IdentifyResult:
    request_id: str
    person_id: str | None
    similarity: float | None
    unknown: bool
    threshold: float
    candidates: list[Candidate]
    model: str
    bbox: BBox | None = None
    gallery_size: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)
    quality: float | None = None  # the face's quality score in [0, 1]
    low_quality: bool = False  # under the server's `low` bar: answered, but treat with care

    @classmethod
    def from_json(cls, data: Json) -> IdentifyResult:
        return cls(
            request_id=data["request_id"],
            person_id=data["person_id"],
            similarity=data["similarity"],
            unknown=bool(data["unknown"]),
            threshold=float(data["threshold"]),
            candidates=[Candidate(c["person_id"], float(c["similarity"])) for c in data["candidates"]],
            model=data["model"],
            bbox=BBox.from_json(data["bbox"]) if data.get("bbox") else None,
            gallery_size=int(data.get("gallery_size", 0)),
            timings_ms=dict(data.get("timings_ms") or {}),
            quality=float(data["quality"]) if data.get("quality") is not None else None,
            low_quality=bool(data.get("low_quality", False)),
        )


@dataclass(frozen=True)
class Face:
    face_id: str
    quality: float
    bbox: BBox
    model_id: str
    created_at: datetime

    @classmethod
    def from_json(cls, data: Json) -> Face:
        return cls(
            data["face_id"],
            float(data["quality"]),
            BBox.from_json(data["bbox"]),
            data["model_id"],
            _time(data["created_at"]),
        )


@dataclass(frozen=True)
class Person:
    person_id: str
    face_count: int
    faces: list[Face]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_json(cls, data: Json) -> Person:
        return cls(
            person_id=data["person_id"],
            face_count=int(data["face_count"]),
            faces=[Face.from_json(f) for f in data["faces"]],
            created_at=_time(data["created_at"]),
            updated_at=_time(data["updated_at"]),
        )


@dataclass(frozen=True)
class PersonSummary:
    person_id: str
    face_count: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_json(cls, data: Json) -> PersonSummary:
        return cls(
            data["person_id"], int(data["face_count"]), _time(data["created_at"]), _time(data["updated_at"])
        )


@dataclass(frozen=True)
class PersonPage:
    items: list[PersonSummary]
    total: int
    limit: int
    offset: int

    @classmethod
    def from_json(cls, data: Json) -> PersonPage:
        return cls(
            [PersonSummary.from_json(p) for p in data["items"]],
            int(data["total"]),
            int(data["limit"]),
            int(data["offset"]),
        )


#: What an erasure erases: a person (every face enrolled before the DELETE), one face, or a
#: whole gallery (`DELETE /galleries/{id}`).
ErasureKind = Literal["person", "face", "gallery"]
#: `pending` until every ready replica and the database projection have applied the erasure.
ErasureStatus = Literal["pending", "done"]


@dataclass(frozen=True)
class LogPosition:
    """Where a record was written: topic, partition and offset."""

    topic: str
    partition: int
    offset: int

    @classmethod
    def from_json(cls, data: Json) -> LogPosition:
        return cls(data["topic"], int(data["partition"]), int(data["offset"]))


@dataclass(frozen=True)
class ErasureAccepted:
    """202 from `DELETE /persons/{id}`, `DELETE /faces/{id}` or `DELETE /galleries/{id}`: the
    erasure command is on the log. Follow it with `erasure(erasure_id)` or
    `wait_for_erasure(erasure_id)`."""

    erasure_id: str
    kind: ErasureKind
    person_id: str | None
    face_id: str | None
    status: str
    #: Where the command was written.
    command: LogPosition
    #: The receipt's path, `/erasures/<erasure_id>`.
    receipt: str
    #: The gallery erased from (or, for kind `gallery`, the gallery erased).
    gallery: str = "default"

    @classmethod
    def from_json(cls, data: Json) -> ErasureAccepted:
        return cls(
            erasure_id=data["erasure_id"],
            kind=data["kind"],
            person_id=data.get("person_id"),
            face_id=data.get("face_id"),
            status=data.get("status", "pending"),
            command=LogPosition.from_json(data["command"]),
            receipt=data["receipt"],
            gallery=data.get("gallery", "default"),
        )


@dataclass(frozen=True)
class TombstonePosition:
    """The last tombstone the erasure wrote in one partition of the embeddings topic."""

    partition: int
    offset: int

    @classmethod
    def from_json(cls, data: Json) -> TombstonePosition:
        return cls(int(data["partition"]), int(data["offset"]))


@dataclass(frozen=True)
class ShardProgress:
    """A replica group: applied when every ready replica in it has applied the tombstones."""

    group: str
    partitions: list[int]
    applied: bool

    @classmethod
    def from_json(cls, data: Json) -> ShardProgress:
        return cls(data["group"], [int(p) for p in data["partitions"]], bool(data["applied"]))


@dataclass(frozen=True)
class ReplicaProgress:
    replica_id: str
    group: str
    partitions: list[int]
    applied: bool

    @classmethod
    def from_json(cls, data: Json) -> ReplicaProgress:
        return cls(
            data["replica_id"], data["group"], [int(p) for p in data["partitions"]], bool(data["applied"])
        )


@dataclass(frozen=True)
class ErasureReceipt:
    """`GET /erasures/{id}`: where an erasure stands. `done` when every ready index replica has
    applied the face tombstones (none can return the faces) and the database projection has
    applied the erasure (the rows are gone); until then `waiting_for` names what it waits for
    (`eraser`, `replicas`, `projection`). `face_ids` is empty until the eraser has run; a
    gallery's erasure lists no ids, only `face_count`."""

    erasure_id: str
    kind: ErasureKind
    person_id: str | None
    face_ids: list[str]
    status: ErasureStatus
    waiting_for: list[str]
    requested_at: datetime | None
    erased_at: datetime | None
    tombstones: list[TombstonePosition]
    shards: list[ShardProgress]
    replicas: list[ReplicaProgress]
    projection_applied: bool
    note: str = ""
    gallery: str = "default"
    face_count: int | None = None

    @property
    def done(self) -> bool:
        return self.status == "done"

    @classmethod
    def from_json(cls, data: Json) -> ErasureReceipt:
        return cls(
            erasure_id=data["erasure_id"],
            kind=data["kind"],
            person_id=data.get("person_id"),
            face_ids=list(data.get("face_ids") or []),
            status=data["status"],
            waiting_for=list(data.get("waiting_for") or []),
            requested_at=_time(data["requested_at"]) if data.get("requested_at") else None,
            erased_at=_time(data["erased_at"]) if data.get("erased_at") else None,
            tombstones=[TombstonePosition.from_json(t) for t in data.get("tombstones") or []],
            shards=[ShardProgress.from_json(s) for s in data.get("shards") or []],
            replicas=[ReplicaProgress.from_json(r) for r in data.get("replicas") or []],
            projection_applied=bool(data.get("projection_applied", False)),
            note=data.get("note", ""),
            gallery=data.get("gallery", "default"),
            face_count=int(data["face_count"]) if data.get("face_count") is not None else None,
        )


@dataclass(frozen=True)
class Replica:
    replica_id: str
    ready: bool
    size: int
    lag: int
    model: str
    backend: str
    raw: Json = field(repr=False, default_factory=dict)

    @classmethod
    def from_json(cls, data: Json) -> Replica:
        return cls(
            data["replica_id"],
            bool(data["ready"]),
            int(data["size"]),
            int(data["lag"]),
            data.get("model", ""),
            data.get("backend", ""),
            data,
        )


@dataclass(frozen=True)
class Stats:
    persons: int | None
    faces: int | None
    gallery_size: int
    replicas: list[Replica]
    in_flight: int
    threshold: float
    model: str
    consumer_lag: list[Json] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: Json) -> Stats:
        return cls(
            persons=data.get("persons"),
            faces=data.get("faces"),
            gallery_size=int(data["gallery_size"]),
            replicas=[Replica.from_json(r) for r in data["replicas"]],
            in_flight=int(data["in_flight"]),
            threshold=float(data["threshold"]),
            model=data["model"],
            consumer_lag=list(data.get("consumer_lag") or []),
        )


@dataclass(frozen=True)
class Health:
    """`GET /health`; a 503 (not ready) is a Health with `ready=False`, not an exception."""

    status: str
    live: bool
    ready: bool
    checks: dict[str, bool]
    detail: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Json) -> Health:
        return cls(
            data["status"],
            bool(data["live"]),
            bool(data["ready"]),
            dict(data.get("checks") or {}),
            dict(data.get("detail") or {}),
        )


#: `deleting` from the DELETE until the eraser is done; no work is accepted for it meanwhile.
GalleryState = Literal["active", "deleting"]


@dataclass(frozen=True)
class IndexSpec:
    """The index backend of a gallery in every replica, with its options (`""`: the
    deployment's default backend)."""

    backend: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Json) -> IndexSpec:
        return cls(data.get("backend", ""), dict(data.get("options") or {}))


@dataclass(frozen=True)
class Gallery:
    """A gallery (collection) with the policies in force: its own, else the deployment's.
    `persons` and `faces` are counted by `get_gallery` (None when the database is away, and in
    `list_galleries`)."""

    id: str
    description: str
    pack: str
    threshold: float
    quality_filter_enroll: str
    quality_filter_identify: str
    index: IndexSpec
    generation: int
    state: GalleryState
    created_by: str = ""
    created_at: datetime | None = None
    persons: int | None = None
    faces: int | None = None

    @classmethod
    def from_json(cls, data: Json) -> Gallery:
        return cls(
            id=data["id"],
            description=data.get("description", ""),
            pack=data["pack"],
            threshold=float(data["threshold"]),
            quality_filter_enroll=data["quality_filter_enroll"],
            quality_filter_identify=data["quality_filter_identify"],
            index=IndexSpec.from_json(data.get("index") or {}),
            generation=int(data.get("generation", 0)),
            state=data.get("state", "active"),
            created_by=data.get("created_by", ""),
            created_at=_time(data["created_at"]) if data.get("created_at") else None,
            persons=int(data["persons"]) if data.get("persons") is not None else None,
            faces=int(data["faces"]) if data.get("faces") is not None else None,
        )


@dataclass(frozen=True)
class GalleryReplay:
    """202 from `POST /galleries/{id}/replay`: every replica rebuilds the gallery's index from
    the log under this new `generation`; the other galleries keep answering."""

    gallery: str
    generation: int

    @classmethod
    def from_json(cls, data: Json) -> GalleryReplay:
        return cls(data["gallery"], int(data["generation"]))
