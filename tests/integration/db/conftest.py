"""A scratch PostgreSQL database per test session, on the server at FACESTREAM_DATABASE_URL
(default: Settings' URL). The suite never touches the data of the database named in the URL:
it creates a scratch database, or, when the role may not create databases, a scratch schema in
that database (selected through search_path), and drops it afterwards. Skips when no server
answers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import delete, make_url, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from db.migrate import run_upgrade, upgrade_async
from db.models import Base, Gallery
from db.session import create_engine, create_sessionmaker, ping
from schemas.events import DEFAULT_GALLERY


@dataclass(frozen=True)
class Scratch:
    url: str
    connect_args: dict[str, Any] = field(default_factory=dict)

    @property
    def own_database(self) -> bool:
        """True: a database of its own, reachable by URL alone; False: a schema."""
        return not self.connect_args


@pytest.fixture(scope="session")
async def pg_scratch(database_url: str) -> AsyncIterator[Scratch]:
    base = make_url(database_url)
    # pre_ping: other tests restart the server; the teardown must not reuse a dead connection.
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    name = f"facestream_test_{uuid.uuid4().hex[:12]}"
    try:
        if not await ping(admin, timeout_s=5):
            pytest.fail(f"no PostgreSQL answers at {base.render_as_string()}")
        async with admin.connect() as connection:
            try:
                await connection.execute(text(f'CREATE DATABASE "{name}"'))
            except ProgrammingError:  # no CREATEDB: a schema in the given database instead
                await connection.execute(text(f'CREATE SCHEMA "{name}"'))
                drop = f'DROP SCHEMA "{name}" CASCADE'
                scratch = Scratch(
                    base.render_as_string(hide_password=False),
                    {"server_settings": {"search_path": name}},
                )
            else:
                drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
                scratch = Scratch(base.set(database=name).render_as_string(hide_password=False))
        try:
            yield scratch
        finally:
            async with admin.connect() as connection:
                await connection.execute(text(drop))
    finally:
        await admin.dispose()


@pytest.fixture(scope="session")
async def pg_engine(pg_scratch: Scratch) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(pg_scratch.url, connect_args=pg_scratch.connect_args)
    if pg_scratch.own_database:
        await upgrade_async(pg_scratch.url)  # the path `facestream db migrate` takes
    else:
        async with engine.begin() as connection:
            await connection.run_sync(run_upgrade)
    yield engine
    await engine.dispose()


@pytest.fixture
async def sessions(pg_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Every table of the models, so that a table added later cannot leak between tests; of
    # the galleries, the schema's own `default` row stays (as after the migrations).
    tables = ", ".join(name for name in Base.metadata.tables if name != Gallery.__tablename__)
    async with pg_engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables}"))
        await connection.execute(
            delete(Gallery).where(Gallery.id != DEFAULT_GALLERY).execution_options(synchronize_session=False)
        )
    return create_sessionmaker(pg_engine)
