"""The projector's wiring without Kafka: records of every topic it reads, applied to a SQLite
projection in one batch transaction, galleries included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.kafka import encode
from db import queries
from db.models import Base
from db.session import create_engine, create_sessionmaker
from schemas.envelope import Envelope
from schemas.events import GalleryErased, PersonErased
from streams import projector as projector_module
from streams.projector import Projector
from tests.unit.db.factories import face_embedded, gallery_defined, gallery_deleted, image_enrolled
from tests.unit.streams.factories import FakeMessage, metrics, settings

SETTINGS = settings()
TOPICS = SETTINGS.topics


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
def projector(sessions: async_sessionmaker[AsyncSession]) -> Projector:
    return Projector(SETTINGS, metrics(), sessions)


class Log:
    """Records with increasing offsets per topic."""

    def __init__(self) -> None:
        self.offsets: dict[str, int] = {}

    def record(self, topic: str, key: str, payload: BaseModel | None) -> FakeMessage:
        offset = self.offsets.get(topic, 0)
        self.offsets[topic] = offset + 1
        value = None if payload is None else encode(Envelope.wrap(payload, correlation_id="c"))
        return FakeMessage(topic, 0, offset, key.encode(), value)


async def read(sessions: async_sessionmaker[AsyncSession], query: Any, **kwargs: Any) -> Any:
    async with sessions() as session:
        return await query(session, **kwargs)


async def test_subscribes_to_the_galleries_topic(
    monkeypatch: pytest.MonkeyPatch, projector: Projector
) -> None:
    seen: list[str] = []

    def make_consumer(_settings: Any, *topics: str, **_options: Any) -> Any:
        seen.extend(topics)
        raise RuntimeError("stop here")

    monkeypatch.setattr(projector_module, "make_consumer", make_consumer)
    with pytest.raises(RuntimeError, match="stop here"):
        await projector.run()
    assert TOPICS.galleries in seen
    assert {TOPICS.embeddings, TOPICS.enrollment_outcomes, TOPICS.erasures} <= set(seen)


async def test_galleries_topic_defines_deletes_and_removes(
    projector: Projector, sessions: async_sessionmaker[AsyncSession]
) -> None:
    log = Log()
    batch = [
        log.record(TOPICS.galleries, "vip", gallery_defined("vip")),
        log.record(TOPICS.embeddings, "fd1", face_embedded("fd1", "alice")),
        log.record(TOPICS.embeddings, "fv1", face_embedded("fv1", "alice", gallery="vip")),
        log.record(
            TOPICS.enrollment_outcomes,
            "alice",
            image_enrolled(0, image_count=1, person_id="alice", enrollment_id="ev", gallery="vip"),
        ),
    ]
    assert await projector._project(batch) == []
    vip = await read(sessions, queries.get_gallery, gallery="vip")
    assert (vip.state, vip.pack, vip.person_count, vip.face_count) == ("active", "buffalo_l", 1, 1)
    assert await read(sessions, queries.get_enrollment, enrollment_id="ev", gallery="vip") is not None

    deleted = [
        log.record(TOPICS.galleries, "vip", gallery_deleted("vip")),
        log.record(TOPICS.embeddings, "fv2", face_embedded("fv2", "bob", gallery="vip")),
        log.record(
            TOPICS.erasures,
            "vip",
            GalleryErased(erasure_id="erase-vip", gallery="vip", face_count=1, requested_by="admin"),
        ),
    ]
    assert await projector._project(deleted) == []
    vip = await read(sessions, queries.get_gallery, gallery="vip")
    assert (vip.state, vip.person_count, vip.face_count) == ("deleting", 0, 0)
    assert await read(sessions, queries.count_faces) == 1  # the default gallery's face stays

    assert await projector._project([log.record(TOPICS.galleries, "vip", None)]) == []
    assert [g.gallery for g in await read(sessions, queries.list_galleries)] == ["default"]


async def test_person_erased_in_its_gallery_only(
    projector: Projector, sessions: async_sessionmaker[AsyncSession]
) -> None:
    log = Log()
    faces = [
        log.record(TOPICS.embeddings, "fd1", face_embedded("fd1", "alice")),
        log.record(TOPICS.embeddings, "fv1", face_embedded("fv1", "alice", gallery="vip")),
    ]
    erased = PersonErased(
        erasure_id="x1",
        person_id="alice",
        gallery="vip",
        face_ids=["fv1"],
        requested_by="admin",
        barrier={0: 2},
    )
    assert await projector._project([*faces, log.record(TOPICS.erasures, "alice", erased)]) == []
    assert await read(sessions, queries.get_person, person_id="alice", gallery="vip") is None
    default = await read(sessions, queries.get_person, person_id="alice")
    assert [f.face_id for f in default.faces] == ["fd1"]


async def test_a_garbled_gallery_record_is_dead_lettered(
    projector: Projector, sessions: async_sessionmaker[AsyncSession]
) -> None:
    garbled = FakeMessage(TOPICS.galleries, 0, 0, b"vip", b'{"not": "an envelope"}')
    letters = await projector._project([garbled])
    assert [letter.topic for letter in letters] == [TOPICS.dead_letter]
    assert [g.gallery for g in await read(sessions, queries.list_galleries)] == ["default"]


async def test_a_key_that_cannot_be_an_id_is_dead_lettered_and_the_batch_goes_on(
    projector: Projector, sessions: async_sessionmaker[AsyncSession]
) -> None:
    log = Log()
    removed = FakeMessage(TOPICS.embeddings, 0, 0, b"f\xff", None)
    gallery_gone = FakeMessage(TOPICS.galleries, 0, 0, b"v\x00ip", None)
    defined = log.record(TOPICS.galleries, "vip", gallery_defined("vip"))
    letters = await projector._project([removed, gallery_gone, defined])
    assert [letter.topic for letter in letters] == [TOPICS.dead_letter] * 2
    assert sorted(g.gallery for g in await read(sessions, queries.list_galleries)) == ["default", "vip"]
