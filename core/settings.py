"""The one Settings object: built at each entry point and passed down, never imported as a global."""

from __future__ import annotations

import re
import socket
import ssl
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.events import QualityFilter

MiB = 1024 * 1024

# `all`: identify answers one result per face; enrollment still takes only the largest face.
MultiFacePolicy = Literal["largest", "best_score", "reject", "all"]
Device = Literal["cpu", "cuda"]
DetectorName = Literal["", "retinaface", "yunet", "scrfd"]


def _stable_host_id() -> str:
    """The host name, made topic- and path-safe. Stable across restarts on purpose: a replica
    finds its snapshot again, and a facade its reply topic."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()) or "local"


class TopicNames(BaseModel):
    """Topic names carry their schema's major version: a breaking change is a new topic."""

    prefix: str
    embeddings_name: str = ""

    @property
    def enroll_requests(self) -> str:
        return f"{self.prefix}.enroll.requests.v1"

    @property
    def identify_requests(self) -> str:
        return f"{self.prefix}.identify.requests.v1"

    @property
    def embeddings(self) -> str:
        return self.embeddings_name or f"{self.prefix}.face.embeddings.v1"

    def embeddings_for(self, pack: str) -> str:
        """Where a gallery re-embedded under another model pack lives beside the current one."""
        return f"{self.prefix}.face.embeddings.{pack}.v1"

    @property
    def enrollment_images(self) -> str:
        return f"{self.prefix}.enrollment.images.v1"

    @property
    def identify_queries(self) -> str:
        return f"{self.prefix}.identify.queries.v1"

    @property
    def identify_results(self) -> str:
        return f"{self.prefix}.identify.results.v1"

    @property
    def enrollment_outcomes(self) -> str:
        return f"{self.prefix}.enrollment.outcomes.v1"

    @property
    def replica_status(self) -> str:
        return f"{self.prefix}.replica.status.v1"

    @property
    def erasure_requests(self) -> str:
        """Erasure commands for the eraser, after the enroll worker ordered them."""
        return f"{self.prefix}.erasure.requests.v1"

    @property
    def erasures(self) -> str:
        """The erasure ledger: ErasureRequested, then PersonErased / FaceErased."""
        return f"{self.prefix}.erasures.v1"

    @property
    def galleries(self) -> str:
        """Every gallery's definition (compacted by gallery id): which galleries exist, with
        their pack, threshold, quality policy and index."""
        return f"{self.prefix}.galleries.v1"

    @property
    def audit(self) -> str:
        return f"{self.prefix}.audit.v1"

    @property
    def dead_letter(self) -> str:
        return f"{self.prefix}.deadletter.v1"

    def replies(self, instance_id: str) -> str:
        return f"{self.prefix}.replies.v1.{instance_id}"

    def is_reply_topic(self, name: str | None) -> bool:
        """A facade's reply topic: the only kind a `reply_to` header may name."""
        prefix = self.replies("")
        return name is not None and len(name) > len(prefix) and name.startswith(prefix)


class Settings(BaseSettings):
    """Every knob of the product; env vars are FACESTREAM_<NAME>, also read from `.env`."""

    model_config = SettingsConfigDict(env_prefix="FACESTREAM_", env_file=".env", extra="ignore", frozen=True)

    # --- API facade
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_keys: SecretStr = Field(
        default=SecretStr(""),
        description="Comma-separated key:role (every gallery) or key:role@gallery (`@a|b` for several) "
        "entries, roles admin|enroller|identifier|viewer",
    )
    instance_id: str = Field(default_factory=_stable_host_id)
    reply_timeout_s: float = 30.0
    max_images_per_enroll: int = 16
    max_in_flight: int = Field(
        default=256, description="Requests awaiting a reply at once; beyond it 503 unavailable"
    )
    rate_limit_per_s: float = Field(default=50.0, description="Sustained requests per second per API key")
    rate_limit_burst: int = Field(default=100, description="Requests a key may burst above its rate")
    max_request_bytes: int = 64 * MiB

    # --- images and engine
    max_image_bytes: int = 15 * MiB
    max_image_pixels: int = 50_000_000
    models_dir: Path = Path("var/models")
    model_pack: str = "default"
    device: Device = "cpu"
    inference_threads: int = Field(default=0, description="onnxruntime intra-op threads; 0 = all cores")
    inference_spinning: bool = Field(
        default=False,
        description="onnxruntime's intra-op threads busy-wait for work between operators "
        "(off: they sleep; on a shared 2-core host a lone identify took 110 ms instead of 142-157)",
    )
    detector: DetectorName = Field(
        default="", description="Detector of the pack to use (retinaface, yunet); empty = the pack's default"
    )
    detection_max_side: int = 640
    detection_min_score: float = 0.6
    multi_face_policy: MultiFacePolicy = "largest"
    quality_filter_enroll: QualityFilter = Field(
        default="auto", description="Quality filter of enrollments when the request names none"
    )
    quality_signal: Literal["norm", "heuristic"] = Field(
        default="norm",
        description="Face quality from the recognizer's embedding norm (where the pack calibrates it) "
        "or from the image heuristic (size, sharpness, pose, detector confidence)",
    )
    quality_filter_identify: QualityFilter = Field(
        default="none",
        description="Quality filter of identifications when the request names none; `none` answers "
        "every face, flagging low_quality",
    )
    liveness: Literal["none", "faceplugin"] = Field(
        default="none", description="Anti-spoofing check; see docs/engine.md before enabling"
    )
    liveness_threshold: float = Field(
        default=0.5, ge=0.0, le=1.0, description="Spoof score above which a face is refused (spoof_suspected)"
    )
    batch_max_size: int = 16
    batch_max_wait_s: float = Field(
        default=0.0,
        ge=0.0,
        description="How long a worker's batch waits after its first record for more when none is "
        "waiting; 0: a lone record goes at once, batches form from what queued under load",
    )

    # --- identification
    threshold: float = Field(
        default=0.45, ge=-1.0, le=1.0, description="Cosine similarity below which a match is unknown"
    )
    top_k: int = Field(default=5, ge=1, le=100)

    # --- index replicas
    index_backend: str = "faiss-flat"
    index_options: dict[str, int | float | str] = Field(
        default={}, description='Backend options as JSON, e.g. {"nprobe": 64} (docs/index.md)'
    )
    index_dir: Path = Path("var/index")
    replica_id: str = Field(default_factory=_stable_host_id)
    replica_group: str = Field(
        default="replicas", description="Replicas of one group share queries; one group per shard"
    )
    replica_partitions: str = Field(
        default="", description="Embeddings partitions this replica holds, e.g. 0,1 (empty = all)"
    )
    read_your_writes_timeout_s: float = 10.0
    snapshot_interval_s: float = 30.0
    status_interval_s: float = 2.0

    # --- Kafka
    kafka_bootstrap: str = "127.0.0.1:19092"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    kafka_ssl_cafile: Path | None = Field(default=None, description="CA bundle that signed the brokers")
    kafka_ssl_certfile: Path | None = Field(default=None, description="Client certificate (mutual TLS)")
    kafka_ssl_keyfile: Path | None = None
    topic_prefix: str = "facestream"
    kafka_linger_ms: int = Field(
        default=0,
        ge=0,
        description="How long a producer holds a record for company. 0: sent at once (every hop of a "
        "request pays it); records queued while a send is in flight still go together",
    )
    kafka_session_timeout_s: float = Field(
        default=10.0, description="A consumer silent this long leaves its group: how fast a crash is noticed"
    )
    static_membership: bool = Field(
        default=True,
        description="Workers join their group with a stable instance id (KIP-345): a restart takes "
        "its partitions back at once. Two workers on one host need distinct FACESTREAM_INSTANCE_IDs",
    )
    topic_partitions: int = 3
    topic_replication_factor: int = 1
    request_retention_ms: int = 60 * 60 * 1000
    embeddings_topic: str = Field(
        default="", description="Override the embeddings topic (a gallery re-embedded under another pack)"
    )

    # --- enrollment images (off by default: only needed to re-embed under another model)
    retain_images: bool = Field(default=False, description="Keep enrollment images on their own topic")
    image_retention_ms: int = 30 * 24 * 60 * 60 * 1000
    image_encryption_key: SecretStr = Field(
        default=SecretStr(""), description="base64 AES-256 key; retained images are sealed with it"
    )

    # --- PostgreSQL
    database_url: str = "postgresql+asyncpg://facestream:facestream@127.0.0.1:55432/facestream"
    database_ssl_cafile: Path | None = Field(
        default=None, description="Verify PostgreSQL's certificate against this CA (TLS required)"
    )

    # --- observability
    log_level: str = "INFO"
    log_json: bool = True
    lag_interval_s: float = Field(default=15.0, description="How often the API measures consumer lag")
    metrics_host: str = Field(default="127.0.0.1", description="Bind address of workers' /metrics")
    metrics_port: int = Field(default=0, description="Workers and replicas serve /metrics here; 0 = off")

    def database_connect_args(self) -> dict[str, object]:
        """asyncpg connection arguments: TLS with certificate verification when a CA is set."""
        if self.database_ssl_cafile is None:
            return {}
        return {"ssl": ssl.create_default_context(cafile=str(self.database_ssl_cafile))}

    @property
    def shard_partitions(self) -> set[int] | None:
        if not self.replica_partitions.strip():
            return None
        return {int(p) for p in self.replica_partitions.split(",") if p.strip()}

    @cached_property
    def topics(self) -> TopicNames:
        return TopicNames(prefix=self.topic_prefix, embeddings_name=self.embeddings_topic)

    @property
    def max_message_bytes(self) -> int:
        """Largest Kafka record we produce: one image, base64-encoded, plus its envelope."""
        return self.max_image_bytes * 4 // 3 + MiB
