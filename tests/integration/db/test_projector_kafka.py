"""The projector on the real broker and database: it follows the galleries topic beside the
embeddings log, and commits the offsets of what it projected."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.kafka import encode, envelope_headers, make_admin, make_producer
from core.metrics import Metrics
from core.settings import Settings
from core.topics import ensure_topics, topic_specs
from db import queries
from schemas.envelope import Envelope
from streams.projector import Projector
from tests.unit.db.factories import face_embedded, gallery_defined, gallery_deleted

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.timeout(120)]

Sessions = async_sessionmaker[AsyncSession]


async def eventually(what: str, check: Callable[[], Awaitable[bool]], timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def test_projector_follows_the_galleries_topic(kafka_bootstrap: str, sessions: Sessions) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"projector-{uuid.uuid4().hex[:8]}",
        instance_id="projector-test",
    )
    topics = settings.topics
    wanted = {topics.embeddings, topics.enrollment_outcomes, topics.erasures, topics.galleries}
    await ensure_topics(settings, [spec for spec in topic_specs(settings) if spec.name in wanted])
    producer = make_producer(settings)
    await producer.start()

    async def send(topic: str, key: str, payload: BaseModel | None) -> None:
        if payload is None:
            await producer.send_and_wait(topic, None, key=key.encode())
            return
        envelope = Envelope.wrap(payload, correlation_id="test")
        await producer.send_and_wait(
            topic, encode(envelope), key=key.encode(), headers=envelope_headers(envelope)
        )

    async def read(query: Callable[..., Awaitable[Any]], **kwargs: Any) -> Any:
        async with sessions() as session:
            return await query(session, **kwargs)

    async def vip_faces() -> int | None:
        vip = await read(queries.get_gallery, gallery="vip")
        return None if vip is None else vip.face_count

    task = asyncio.create_task(Projector(settings, Metrics.create(), sessions).run())
    try:
        await send(topics.galleries, "vip", gallery_defined("vip"))
        await send(topics.embeddings, "fd1", face_embedded("fd1", "alice"))
        await send(topics.embeddings, "fv1", face_embedded("fv1", "alice", gallery="vip"))
        await eventually("the vip gallery and its face", lambda: _equals(vip_faces(), 1))
        await eventually("the default gallery's face", lambda: _equals(read(queries.count_faces), 1))

        await send(topics.galleries, "vip", gallery_deleted("vip"))

        async def vip_state() -> str | None:
            vip = await read(queries.get_gallery, gallery="vip")
            return None if vip is None else vip.state

        await eventually("vip deleting", lambda: _equals(vip_state(), "deleting"))
        assert await vip_faces() == 0
        assert await read(queries.count_faces) == 1

        await send(topics.galleries, "vip", None)
        await eventually("vip removed", lambda: _equals(vip_state(), None))
        await eventually("offsets committed", lambda: _equals(_committed(settings, topics.galleries), 3))
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await producer.stop()
        await _delete_topics(settings, sorted(wanted))
    assert [g.gallery for g in await read(queries.list_galleries)] == ["default"]


async def _equals(value: Awaitable[Any], expected: Any) -> bool:
    return await value == expected


async def _committed(settings: Settings, topic: str) -> int | None:
    admin = make_admin(settings)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(f"{settings.topic_prefix}.projector")
    finally:
        await admin.close()
    found = [meta.offset for tp, meta in offsets.items() if tp.topic == topic]
    return found[0] if found else None


async def _delete_topics(settings: Settings, names: list[str]) -> None:
    """The broker is shared: leave no topics of this test behind."""
    admin = make_admin(settings)
    await admin.start()
    try:
        await admin.delete_topics(names)
    finally:
        await admin.close()
