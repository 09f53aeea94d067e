"""The projection contract, the migrations and concurrency on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, make_url, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from db.migrate import current_revision, head_revision, upgrade
from db.models import Base
from db.projection import apply_face_embedded, apply_image_enrolled
from db.queries import count_faces, get_enrollment, get_person
from db.session import create_engine, ping
from tests.integration.db.conftest import Scratch
from tests.unit.db.contract import ProjectionContract, read
from tests.unit.db.factories import OUTCOMES_TOPIC, TOPIC, face_embedded, image_enrolled
from tests.unit.db.populated import check_populated_upgrade

pytestmark = pytest.mark.postgres

Sessions = async_sessionmaker[AsyncSession]


class TestPostgresProjection(ProjectionContract):
    pass


def schema_diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, Base.metadata)


async def test_migrations_match_models(pg_engine: AsyncEngine) -> None:
    async with pg_engine.connect() as connection:
        assert await connection.run_sync(schema_diff) == []
        assert await connection.run_sync(current_revision) == head_revision()


async def test_upgrade_is_idempotent_from_a_running_loop(pg_scratch: Scratch, pg_engine: AsyncEngine) -> None:
    if not pg_scratch.own_database:
        pytest.skip("the role may not create databases: a scratch schema is not reachable by URL")
    upgrade(pg_scratch.url)
    async with pg_engine.connect() as connection:
        assert await connection.run_sync(current_revision) == head_revision()


async def test_ping(pg_engine: AsyncEngine) -> None:
    assert await ping(pg_engine)


async def test_concurrent_duplicates_apply_once(sessions: Sessions) -> None:
    async def apply(offset: int) -> bool:
        async with sessions() as session:
            applied = await apply_face_embedded(
                session, event_id="same", fact=face_embedded(), topic=TOPIC, partition=0,
                offset=offset,
            )  # fmt: skip
            await asyncio.sleep(0.05)  # hold the transaction open while the others race
            await session.commit()
            return applied

    results = await asyncio.gather(*(apply(n) for n in range(4)))
    assert sorted(results) == [False, False, False, True]
    assert await read(sessions, count_faces) == 1


async def test_concurrent_first_faces_of_one_person(sessions: Sessions) -> None:
    async def apply(n: int) -> bool:
        async with sessions() as session:
            applied = await apply_face_embedded(
                session, event_id=f"ev{n}", fact=face_embedded(face_id=f"f{n}"), topic=TOPIC,
                partition=n, offset=0,
            )  # fmt: skip
            await session.commit()
            return applied

    assert all(await asyncio.gather(*(apply(n) for n in range(8))))
    person = await read(sessions, get_person, person_id="p1")
    assert person.face_count == 8


async def test_concurrent_outcomes_of_one_enrollment(sessions: Sessions) -> None:
    async def apply(i: int) -> bool:
        async with sessions() as session:
            applied = await apply_image_enrolled(
                session, event_id=f"o{i}", fact=image_enrolled(i, image_count=6),
                topic=OUTCOMES_TOPIC, partition=0, offset=i,
            )  # fmt: skip
            await session.commit()
            return applied

    assert all(await asyncio.gather(*(apply(i) for i in range(6))))
    enrollment = await read(sessions, get_enrollment, enrollment_id="e1")
    assert (enrollment.status, enrollment.accepted_count) == ("complete", 6)


@pytest.fixture
async def empty_database(database_url: str) -> AsyncIterator[str]:
    """A database of its own, with no table at all (the migrations start from nothing)."""
    base = make_url(database_url)
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    name = f"facestream_migrate_{uuid.uuid4().hex[:12]}"
    try:
        async with admin.connect() as connection:
            try:
                await connection.execute(text(f'CREATE DATABASE "{name}"'))
            except ProgrammingError:
                pytest.skip("the role may not create databases")
        try:
            yield base.set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as connection:
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def test_upgrade_of_a_populated_single_gallery_database(empty_database: str) -> None:
    engine = create_engine(empty_database)
    try:
        await check_populated_upgrade(empty_database, engine)
    finally:
        await engine.dispose()
