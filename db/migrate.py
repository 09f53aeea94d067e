"""Run the alembic migrations programmatically (`facestream db migrate`).

The migrations folder is found by path, next to this package; db never imports it as Python.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str | None = None) -> Config:
    """An in-memory alembic Config (no alembic.ini needed) for `database_url`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if database_url is not None:
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logging"] = False
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the repository ships revisions
        raise RuntimeError(f"no alembic revisions under {MIGRATIONS_DIR}")
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision a database is at (None before the first migration).
    Async callers: `await async_connection.run_sync(current_revision)`."""
    return MigrationContext.configure(connection).get_current_revision()


def _outside_loop(fn: Callable[..., object], *args: object) -> None:
    """env.py runs its own event loop (asyncio.run); inside a running loop that must happen
    on another thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        fn(*args)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="alembic") as pool:
        pool.submit(fn, *args).result()


def upgrade(database_url: str, *, revision: str = "head") -> None:
    """Migrate the database at `database_url` to `revision`. Blocking; safe to call from a
    running event loop (it then blocks that loop: prefer `await upgrade_async(...)` there)."""
    _outside_loop(command.upgrade, alembic_config(database_url), revision)


def downgrade(database_url: str, *, revision: str) -> None:
    _outside_loop(command.downgrade, alembic_config(database_url), revision)


async def upgrade_async(database_url: str, *, revision: str = "head") -> None:
    await asyncio.to_thread(command.upgrade, alembic_config(database_url), revision)


def run_upgrade(connection: Connection, revision: str = "head") -> None:
    """Migrate on a caller's connection (e.g. `await conn.run_sync(run_upgrade)`)."""
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
