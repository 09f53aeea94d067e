"""Fixtures for the SQLite suite: a fresh database file per test, built either from the models
(create_all) or by the alembic migrations, so both paths pass the same contract."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.migrate import run_upgrade
from db.models import Base
from db.session import create_engine, create_sessionmaker


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(sqlite_url(tmp_path / "facestream.db"))
    yield engine
    await engine.dispose()


@pytest.fixture(params=["create_all", "alembic"])
async def sessions(request: pytest.FixtureRequest, engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    async with engine.begin() as connection:
        if request.param == "create_all":
            await connection.run_sync(Base.metadata.create_all)
        else:
            await connection.run_sync(run_upgrade)
    return create_sessionmaker(engine)
