"""A record whose data PostgreSQL refuses is a dead letter, and its batch is projected without
it: the projector never stalls behind it (it used to retry such a batch for ever, as if the
database were away)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.kafka import encode
from core.metrics import Metrics
from db import queries
from schemas.envelope import Envelope
from schemas.events import DeadLetter
from streams.projector import Projector
from tests.unit.db.factories import face_embedded, gallery_defined
from tests.unit.streams.factories import FakeMessage, settings

pytestmark = [pytest.mark.postgres]

SETTINGS = settings()
TOPICS = SETTINGS.topics


def _record(topic: str, offset: int, key: str, payload: BaseModel) -> FakeMessage:
    return FakeMessage(topic, 0, offset, key.encode(), encode(Envelope.wrap(payload, correlation_id="c")))


async def test_refused_records_are_dead_letters_and_the_batch_goes_on(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    records = [
        _record(TOPICS.galleries, 0, "long", gallery_defined("long", created_by="x" * 300)),  # varchar(256)
        _record(TOPICS.embeddings, 0, "f1", face_embedded("f1", "alice")),
        _record(TOPICS.galleries, 1, "huge", gallery_defined("huge", generation=2**40)),  # an int4 column
        _record(TOPICS.galleries, 2, "vip", gallery_defined("vip")),
    ]
    letters = await Projector(SETTINGS, Metrics.create(), sessions)._project(records)  # type: ignore[arg-type]

    refused = [DeadLetter.model_validate(letter.envelope.payload) for letter in letters]
    assert [(d.topic, d.offset, d.reason) for d in refused] == [
        (TOPICS.galleries, 0, "invalid_message"),
        (TOPICS.galleries, 1, "invalid_message"),
    ]
    assert "too long" in refused[0].message and "the database refused it" in refused[1].message
    async with sessions() as session:
        assert await queries.count_faces(session) == 1
        galleries = {g.gallery for g in await queries.list_galleries(session)}
        assert galleries == {"default", "vip"}


async def test_a_missing_table_is_retried_not_dead_lettered(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The schema behind (migrations not applied) is not the record's fault: the batch fails
    whole, to be retried, and nothing becomes a dead letter."""
    async with sessions() as session, session.begin():
        await session.execute(text("ALTER TABLE faces RENAME TO faces_away"))
    try:
        with pytest.raises(Exception, match="faces"):
            await Projector(SETTINGS, Metrics.create(), sessions)._project(
                [_record(TOPICS.embeddings, 0, "f1", face_embedded("f1", "alice"))]  # type: ignore[list-item]
            )
    finally:
        async with sessions() as session, session.begin():
            await session.execute(text("ALTER TABLE faces_away RENAME TO faces"))
