"""Factories for the API tests: settings, an app with fake gateway and replicas, uploads."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.erasure_ledger import ErasureLedger
from api.gateway import _Awaiting
from api.replicas import ReplicaTracker
from core.errors import FacestreamError
from core.galleries import Gallery, face_id_for
from core.gallery_catalog import GalleryCatalog
from core.kafka import encode
from core.settings import Settings
from db.models import Base
from db.session import create_engine
from engine.fake import DeterministicFakeEngine
from schemas.envelope import Envelope
from schemas.events import (
    Candidate,
    EnrollFace,
    ErrorInfo,
    FaceSearched,
    IdentifyFace,
    IdentifyFailed,
    ImageEnrolled,
    ReplicaStatus,
)

ADMIN, ENROLLER, IDENTIFIER, VIEWER = "admin-key", "enr", "idf", "view"
API_KEYS = f"{ADMIN}:admin,{ENROLLER}:enroller,{IDENTIFIER}:identifier,{VIEWER}:viewer"
MAX_IMAGE_BYTES = 20_000
MAX_REQUEST_BYTES = 100_000


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    fields: dict[str, Any] = {
        "api_keys": API_KEYS,
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        "instance_id": "api-test",
        "max_image_bytes": MAX_IMAGE_BYTES,
        "max_request_bytes": MAX_REQUEST_BYTES,
        "threshold": 0.5,
        "top_k": 5,
    }
    fields.update(overrides)
    return Settings(_env_file=None, **fields)  # type: ignore[call-arg]


@dataclass(frozen=True)
class RecordMetadata:
    partition: int
    offset: int


class FakeGateway:
    """Answers commands as the pipeline would, from the fake engine; or raises `error`."""

    def __init__(self, *, gallery: tuple[str, ...] = ("alice", "bob")) -> None:
        self.started = True
        self.in_flight = 0
        self.reply_topic = "facestream.replies.v1.api-test"
        self.broker_up = True
        self.engine = DeterministicFakeEngine()
        self.gallery = gallery
        self.error: FacestreamError | None = None
        self.requests: list[tuple[str, list[tuple[str, Envelope[Any]]], str]] = []
        self.options: list[dict[str, Any]] = []  # what each request passed beyond the above
        self.published: list[tuple[str, str, Envelope[Any]]] = []
        self.galleries: FakeCatalog | None = None  # fed what is published on the galleries topic

    async def broker_reachable(self) -> bool:
        return self.broker_up

    async def publish(self, topic: str, commands: list[tuple[str, Envelope[Any]]]) -> list[RecordMetadata]:
        if self.error is not None:
            raise self.error
        first = len(self.published)
        self.published += [(topic, key, envelope) for key, envelope in commands]
        if self.galleries is not None and topic == self.galleries.topic:
            for key, envelope in commands:
                self.galleries.registry.apply(FakeRecord(key.encode(), encode(envelope)))
        return [RecordMetadata(partition=0, offset=first + n) for n in range(len(commands))]

    async def request(
        self,
        topic: str,
        commands: list[tuple[str, Envelope[Any]]],
        *,
        correlation_id: str,
        expected: int | None = None,
        partial_ok: bool = False,
        **options: Any,
    ) -> list[bytes]:
        """The replies go through the real gateway's wait, the first one twice: delivery is at
        least once, and a repeat must not stand in for another reply."""
        self.requests.append((topic, commands, correlation_id))
        self.options.append(options)
        if self.error is not None:
            raise self.error
        await asyncio.sleep(0)
        replies = [
            encode(Envelope.wrap(self._reply(e.payload), correlation_id=correlation_id)) for _, e in commands
        ]
        waiting = _Awaiting(expected=expected or len(commands), **options)
        for reply in [replies[0], *replies]:
            if not waiting.done.done():
                waiting.add(reply)
        return waiting.done.result() if waiting.done.done() else waiting.replies

    def _reply(self, command: Any) -> Any:
        if isinstance(command, EnrollFace):
            return self._enrolled(command)
        assert isinstance(command, IdentifyFace)
        return self._identified(command)

    def _enrolled(self, command: EnrollFace) -> ImageEnrolled:
        common = {
            "enrollment_id": command.enrollment_id,
            "person_id": command.person_id,
            "image_index": command.image_index,
            "image_count": command.image_count,
            "filename": command.filename,
            "model": self.engine.model.id,
        }
        try:
            prepared = self.engine.prepare(command.image)
        except FacestreamError as exc:
            return ImageEnrolled(status="rejected", reason=exc.code.value, message=exc.message, **common)
        face = prepared.faces[0]
        return ImageEnrolled(
            status="accepted",
            face_id=face_id_for(command.gallery, command.person_id, prepared.content_hash),
            quality=face.quality,
            bbox=face.bbox,
            embedding_partition=0,
            embedding_offset=command.image_index,
            **common,
        )

    def _identified(self, command: IdentifyFace) -> FaceSearched | IdentifyFailed:
        try:
            prepared = self.engine.prepare(command.image)
        except FacestreamError as exc:
            return IdentifyFailed(
                request_id=command.request_id, error=ErrorInfo(code=exc.code.value, message=exc.message)
            )
        identity = command.image.decode().split(":")[1]
        # The facade resolves the policy; a replica only ranks, with what the query carries.
        assert command.top_k is not None and command.threshold is not None
        candidates = [
            Candidate(person_id=p, similarity=0.9 if p == identity else 0.1, face_id=f"f-{p}")
            for p in self.gallery
        ]
        candidates.sort(key=lambda c: -c.similarity)
        return FaceSearched(
            request_id=command.request_id,
            candidates=candidates[: command.top_k],
            threshold=command.threshold,
            top_k=command.top_k,
            model=self.engine.model.id,
            bbox=prepared.faces[0].bbox,
            quality=prepared.faces[0].quality,
            replica_id="replica-1",
            gallery_size=len(self.gallery),
        )


@dataclass(frozen=True)
class FakeHeartbeat:
    status: ReplicaStatus
    age_s: float = 0.5


def replica_status(replica_id: str = "replica-1", *, ready: bool = True, size: int = 2) -> ReplicaStatus:
    return ReplicaStatus(
        replica_id=replica_id,
        group="replicas",
        ready=ready,
        size=size,
        model="fake/fake@1",
        backend="faiss-flat",
        applied_offsets={0: size},
        end_offsets={0: size},
        lag=0,
        restored_from="log",
    )


class FakeReplicas:
    def __init__(self, *statuses: ReplicaStatus) -> None:
        self.heartbeats = [FakeHeartbeat(s) for s in statuses]

    def live(self) -> list[FakeHeartbeat]:
        return list(self.heartbeats)

    def ready(self) -> list[FakeHeartbeat]:
        return [hb for hb in self.heartbeats if hb.status.ready]

    # The real tracker's answers, computed over these heartbeats.
    shards = ReplicaTracker.shards
    covers_every_partition = ReplicaTracker.covers_every_partition


async def _create_tables(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
    finally:
        await engine.dispose()


def make_app(
    tmp_path: Path,
    *,
    gateway: FakeGateway | None = None,
    replicas: FakeReplicas | None = None,
    tables: bool = True,
    **overrides: Any,
) -> FastAPI:
    config = settings(tmp_path, **overrides)
    if tables:
        asyncio.run(_create_tables(config.database_url))
    app = create_app(config)
    app.state.gateway = gateway or FakeGateway()
    app.state.galleries = app.state.gateway.galleries = FakeCatalog(config)
    app.state.replicas = replicas if replicas is not None else FakeReplicas(replica_status())
    app.state.ledger = FakeLedger(config)
    return app


@dataclass(frozen=True)
class FakeRecord:
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


class FakeCatalog(GalleryCatalog):
    """The galleries topic without Kafka: the fake gateway applies what is published on it."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.topic = settings.topics.galleries

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def refresh(self) -> None:
        pass

    async def lookup(self, gallery: str) -> Gallery | None:
        return self.registry.get(gallery)


class FakeLedger(ErasureLedger):
    """The ledger without Kafka: facts are noted by the test; the projector's committed
    offsets are whatever the test sets."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.committed: dict[tuple[str, int], int] = {}

    async def projector_offsets(self) -> dict[tuple[str, int], int]:
        return dict(self.committed)


def client(app: FastAPI, key: str | None = ADMIN) -> TestClient:
    """Not entered as a context manager: the lifespan (Kafka) never runs."""
    headers = {"X-API-Key": key} if key is not None else {}
    return TestClient(app, headers=headers, raise_server_exceptions=False)


def image(identity: str = "alice", variant: str = "1") -> bytes:
    return f"FAKE:{identity}:{variant}".encode()


def too_large_image() -> bytes:
    return b"FAKE:big:1:" + b"0" * MAX_IMAGE_BYTES
