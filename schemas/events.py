"""Payloads on the topics. Commands are imperative (`EnrollFace`), facts past tense (`FaceEmbedded`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

PERSON_ID_PATTERN = r"^[A-Za-z0-9._:@-]{1,128}$"
PersonId = Annotated[str, Field(pattern=PERSON_ID_PATTERN)]
# Caller-controlled face-quality filter (bars in core.quality_policy).
QualityFilter = Literal["none", "low", "medium", "high", "auto"]
# A gallery (collection) id. No "/" or ".": it appears in keys, topic-free file names and URLs.
GALLERY_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
GalleryId = Annotated[str, Field(pattern=GALLERY_ID_PATTERN)]
# The gallery of every record written before galleries existed, and of the routes without one.
DEFAULT_GALLERY = "default"


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, ser_json_bytes="base64", val_json_bytes="base64")


class BBox(_Payload):
    x: float
    y: float
    width: float
    height: float


class ModelInfo(_Payload):
    """Which pack produced an embedding: vectors from different models never share an index."""

    pack: str
    recognizer: str
    version: str
    dim: int

    @property
    def id(self) -> str:
        return f"{self.pack}/{self.recognizer}@{self.version}"


class Embedding(_Payload):
    """A unit-norm vector as little-endian float32 bytes (exact, and 3x smaller than JSON floats)."""

    model: ModelInfo
    vector_f32le: bytes


class ErrorInfo(_Payload):
    code: str
    message: str


class StageTimings(_Payload):
    decode_ms: float = 0.0
    detect_ms: float = 0.0
    align_ms: float = 0.0
    embed_ms: float = 0.0
    search_ms: float = 0.0


# --- commands


class EnrollFace(_Payload):
    """Enroll one image for a person (a REST enrollment of N images is N commands)."""

    enrollment_id: str
    person_id: PersonId
    gallery: GalleryId = DEFAULT_GALLERY
    image_index: int = Field(default=0, ge=0)
    image_count: int = Field(default=1, ge=1)
    filename: str = ""
    image: bytes
    # Resolved by the facade; a command produced without one gets the enroll default (`auto`
    # unless FACESTREAM_QUALITY_FILTER_ENROLL says otherwise).
    quality_filter: QualityFilter | None = None


class IdentifyFace(_Payload):
    """Identify the face in one image; cameras produce these straight onto the topic."""

    request_id: str
    gallery: GalleryId = DEFAULT_GALLERY
    image: bytes
    top_k: int | None = Field(default=None, ge=1, le=100)
    threshold: float | None = Field(default=None, ge=-1.0, le=1.0)
    source: str = ""
    # Read-your-writes: embeddings partition -> offset the answering replica must have applied.
    min_offsets: dict[int, int] = {}
    # Resolved by the facade; a camera's command without one gets the identify default (`none`:
    # answer every face, flagged low_quality under the bar, unless the setting says otherwise).
    quality_filter: QualityFilter | None = None


# --- facts


class FaceEmbedded(_Payload):
    """A face entered the gallery. Keyed by face id on the compacted embeddings topic;
    a tombstone (null value) under the same key removes it."""

    face_id: str
    person_id: PersonId
    gallery: GalleryId = DEFAULT_GALLERY
    enrollment_id: str
    embedding: Embedding
    quality: float
    det_score: float
    bbox: BBox
    content_hash: str
    filename: str = ""


class ImageEnrolled(_Payload):
    """Outcome of one EnrollFace: accepted with its face, or rejected with a machine-readable reason."""

    enrollment_id: str
    person_id: str
    gallery: GalleryId = DEFAULT_GALLERY
    image_index: int
    image_count: int
    filename: str
    status: Literal["accepted", "rejected"]
    model: str
    face_id: str | None = None
    quality: float | None = None
    bbox: BBox | None = None
    reason: str | None = None
    message: str | None = None
    embedding_partition: int | None = None
    embedding_offset: int | None = None
    timings: StageTimings = StageTimings()


class IdentifyQuery(_Payload):
    """An embedded probe face, waiting for an index replica to search it."""

    request_id: str
    gallery: GalleryId = DEFAULT_GALLERY
    embedding: Embedding
    top_k: int
    threshold: float
    bbox: BBox
    det_score: float
    quality: float
    timings: StageTimings = StageTimings()
    min_offsets: dict[int, int] = {}
    # Under the `all` policy an image yields one query per face, largest first.
    face_index: int = Field(default=0, ge=0)
    face_count: int = Field(default=1, ge=1)


class Candidate(_Payload):
    person_id: str
    similarity: float
    face_id: str


class FaceSearched(_Payload):
    """One shard's ranked candidates for one probe face. Replicas rank; they never decide
    known/unknown: the merge of every shard's answer does that once, against the threshold
    the request carried (`core.identification.merge`)."""

    request_id: str
    gallery: GalleryId = DEFAULT_GALLERY
    candidates: list[Candidate]
    threshold: float
    top_k: int
    model: str
    bbox: BBox | None = None
    quality: float | None = None
    replica_id: str
    gallery_size: int
    timings: StageTimings = StageTimings()
    # Which shard answered: its replica group and the embeddings partitions it holds.
    shard: str = ""
    partitions: list[int] = []
    face_index: int = 0
    face_count: int = 1


class IdentifyFailed(_Payload):
    """An IdentifyFace that cannot be answered (no face, undecodable image, ...)."""

    request_id: str
    error: ErrorInfo
    timings: StageTimings = StageTimings()


class ReplicaStatus(_Payload):
    """Heartbeat of one index replica, on a compacted topic keyed by replica id."""

    replica_id: str
    group: str
    ready: bool
    size: int
    model: str
    backend: str
    applied_offsets: dict[int, int]
    end_offsets: dict[int, int]
    lag: int
    restored_from: Literal["snapshot", "log"]
    snapshot_offsets: dict[int, int] = {}
    partitions: list[int] = []
    total_partitions: int = 0
    # Faces per gallery (`size` is their sum): what a gallery-scoped key may be shown.
    gallery_sizes: dict[str, int] = {}


class DeadLetter(_Payload):
    """A record that could not be processed, with where it came from and why."""

    topic: str
    partition: int
    offset: int
    key: str | None
    reason: str
    message: str
    stage: str
    value: bytes
    headers: dict[str, str] = {}


class ErasePerson(_Payload):
    """Erase every face of a person enrolled before this command.

    Published on the enroll-requests topic under the person id, so that it passes the enroll
    worker in order with that person's enrollments; the worker forwards it to the eraser with
    the log positions (`barrier`) that every earlier enrollment of the person lies below."""

    erasure_id: str
    person_id: PersonId
    gallery: GalleryId = DEFAULT_GALLERY
    requested_by: str
    # Filled by the enroll worker: embeddings / enrollment-outcomes partition -> end offset.
    barrier: dict[int, int] = {}
    outcomes_barrier: dict[int, int] = {}


class EraseFace(_Payload):
    """Erase one face; published on the erasure-requests topic under the face id."""

    erasure_id: str
    face_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    requested_by: str
    gallery: GalleryId = DEFAULT_GALLERY


class ErasureRequested(_Payload):
    """The facade accepted an erasure: the first entry of its receipt on the erasures ledger."""

    erasure_id: str
    kind: Literal["person", "face", "gallery"]
    gallery: GalleryId = DEFAULT_GALLERY
    person_id: PersonId | None = None
    face_id: str | None = None
    requested_by: str


class PersonErased(_Payload):
    """A person was erased: tombstones for every face the log held for them below `barrier`
    are on the embeddings and retained-images topics, at `tombstones` (partition -> last
    offset). The projection deletes the rows and ignores that person's records below the
    barriers. No face ids: the log held no face of the person. No biometric data."""

    erasure_id: str
    person_id: PersonId
    gallery: GalleryId = DEFAULT_GALLERY
    face_ids: list[str]
    requested_by: str
    tombstones: dict[int, int] = {}
    barrier: dict[int, int] = {}
    outcomes_barrier: dict[int, int] = {}

    @property
    def found(self) -> bool:
        return bool(self.face_ids)


class FaceErased(_Payload):
    """One face was erased (or, without a person, the log did not hold it)."""

    erasure_id: str
    face_id: str
    person_id: str | None
    requested_by: str
    gallery: GalleryId = DEFAULT_GALLERY
    tombstones: dict[int, int] = {}

    @property
    def found(self) -> bool:
        return self.person_id is not None


class AuditRecord(_Payload):
    """Who decided what, when, under which model and threshold. Never the image."""

    action: Literal["enroll", "identify", "erase_person", "erase_face", "erase_gallery", "create_gallery"]
    request_id: str
    gallery: GalleryId = DEFAULT_GALLERY
    actor: str
    role: str
    person_id: str | None = None
    face_ids: list[str] = []
    outcome: str
    model: str = ""
    threshold: float | None = None
    similarity: float | None = None


class EnrollmentImage(_Payload):
    """An accepted enrollment photo, kept (only when configured) so that the gallery can be
    re-embedded under another model. Keyed by face id on a compacted topic with its own
    retention; erasure tombstones it with the face. `image` is sealed when a key is set."""

    face_id: str
    person_id: PersonId
    gallery: GalleryId = DEFAULT_GALLERY
    enrollment_id: str
    filename: str = ""
    content_hash: str
    sealed: bool
    image: bytes


# --- galleries


class IndexSpec(_Payload):
    """Which index backend holds a gallery in every replica, with that backend's options
    (e.g. `nlist`, `m` for faiss-ivfpq). Empty backend: the deployment's default."""

    backend: str = ""
    options: dict[str, int | float | str] = {}


class GalleryDefined(_Payload):
    """A gallery exists, with its policies. On the compacted galleries topic under the gallery
    id: the latest record is the gallery's state, read by every process that serves it."""

    gallery: GalleryId
    description: str = Field(default="", max_length=1024)
    pack: str
    # None: the deployment's default (FACESTREAM_THRESHOLD, the quality filter settings).
    threshold: float | None = Field(default=None, ge=-1.0, le=1.0)
    quality_filter_enroll: QualityFilter | None = None
    quality_filter_identify: QualityFilter | None = None
    index: IndexSpec = IndexSpec()
    # Bumped (with or without a new index) to have every replica rebuild this gallery's index
    # from the log while its other galleries keep answering: a replay of one gallery.
    generation: int = Field(default=0, ge=0)
    created_by: str = ""
    created_at: str = ""


class GalleryDeleted(_Payload):
    """A gallery is being deleted: from this record on no process accepts work for it, every
    replica drops its index, and the eraser tombstones every face the log holds for it. Once
    the eraser has written `GalleryErased`, it tombstones the gallery's key, freeing the id."""

    gallery: GalleryId
    erasure_id: str
    requested_by: str


class EraseGallery(_Payload):
    """Erase every face of a gallery; published on the erasure-requests topic under the
    gallery id after `GalleryDeleted` is on the galleries topic."""

    erasure_id: str
    gallery: GalleryId
    requested_by: str


class GalleryErased(_Payload):
    """Every face the log held for a gallery has a tombstone (at `tombstones`, partition ->
    last offset); faces of the gallery that arrive later are tombstoned as they arrive."""

    erasure_id: str
    gallery: GalleryId
    face_count: int
    requested_by: str
    tombstones: dict[int, int] = {}
    barrier: dict[int, int] = {}

    @property
    def found(self) -> bool:
        return True
