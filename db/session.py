"""Engine and session factories. Nothing module-level: the entry point builds one engine from
Settings.database_url and passes it (or its sessionmaker) down."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    if parsed.database.startswith("file:"):  # URI filenames: leave them to sqlite
        return None
    return Path(parsed.database)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Foreign keys (ON DELETE CASCADE) are off by default in SQLite; WAL lets readers run
    # beside the one writer; busy_timeout waits for the writer instead of failing at once.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def create_engine(
    url: str,
    *,
    echo: bool = False,
    pool_size: int = 5,
    max_overflow: int = 10,
    pool_recycle_s: int = 1800,
    connect_args: dict[str, Any] | None = None,
) -> AsyncEngine:
    """An async engine for `url` (postgresql+asyncpg://... or sqlite+aiosqlite:///path).

    Connections are pinged before use, so a restarted database costs one retry, not an error.
    For a SQLite file the parent folder is created and foreign keys are switched on.
    """
    options: dict[str, Any] = {
        "echo": echo,
        "pool_pre_ping": True,
        "connect_args": dict(connect_args or {}),
    }
    sqlite_path = _sqlite_file(url)
    if make_url(url).get_backend_name() == "sqlite":
        if sqlite_path is not None:
            sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    else:
        options.update(pool_size=pool_size, max_overflow=max_overflow, pool_recycle=pool_recycle_s)
    engine = _create_async_engine(url, **options)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded values after commit (records outlive their transaction)."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine, *, timeout_s: float = 2.0) -> bool:
    """True when a connection answers `SELECT 1` within `timeout_s`; never raises."""
    try:
        async with asyncio.timeout(timeout_s), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:
        return False
    return True
