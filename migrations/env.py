"""Alembic environment: async engines, target metadata from db.models.

Where the database URL comes from, first match wins:
  1. a connection handed in as `config.attributes["connection"]` (db.migrate does this to
     migrate on a caller's connection; nothing else is opened);
  2. `alembic -x url=...`;
  3. `sqlalchemy.url` in the Config (db.migrate.upgrade sets it);
  4. FACESTREAM_DATABASE_URL / .env, through core.settings.Settings (the alembic CLI).
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import Connection, make_url, pool
from sqlalchemy.ext.asyncio import create_async_engine

from db.models import Base

config = context.config
target_metadata = Base.metadata

if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _database_url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from core.settings import Settings  # the alembic CLI is an entry point: it builds Settings

    return Settings().database_url


def _configure(**options: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        # SQLite cannot ALTER most things: later revisions get copy-and-move batches there.
        render_as_batch=True,
        **options,
    )


def _run_on(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_on)
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    """`alembic upgrade --sql`: emit the SQL instead of running it."""
    _configure(url=_database_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    url = _database_url()
    if make_url(url).get_dialect().is_async:
        asyncio.run(_run_async(url))
        return
    from sqlalchemy import create_engine  # a sync driver URL (e.g. psycopg) works too

    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as sync_connection:
            _run_on(sync_connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
