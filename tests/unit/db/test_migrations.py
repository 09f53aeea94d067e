"""The hand-written alembic revisions build exactly the schema of db.models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect

from db.migrate import (
    current_revision,
    downgrade,
    head_revision,
    upgrade,
    upgrade_async,
)
from db.models import Base
from db.session import create_engine
from tests.unit.db.conftest import sqlite_url
from tests.unit.db.populated import check_populated_upgrade

REPO = Path(__file__).resolve().parents[3]


def schema_diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, Base.metadata)


def table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def inspect_db(url: str, fn: Any) -> Any:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(fn)
    finally:
        await engine.dispose()


def alembic_cli(*args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_head_is_the_galleries_revision() -> None:
    assert head_revision() == "0003"


async def test_upgrade_head_matches_models(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "m.db")
    upgrade(url)  # called from inside a running event loop
    assert await inspect_db(url, schema_diff) == []
    assert await inspect_db(url, current_revision) == head_revision()


async def test_upgrade_async(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "m.db")
    await upgrade_async(url)
    await upgrade_async(url)  # at head already: nothing to do
    assert await inspect_db(url, current_revision) == "0003"


async def test_upgrade_of_a_populated_single_gallery_database(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "populated.db")
    engine = create_engine(url)
    try:
        await check_populated_upgrade(url, engine)
    finally:
        await engine.dispose()


async def test_downgrade_to_base_drops_every_table(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "m.db")
    upgrade(url)
    downgrade(url, revision="base")
    assert await inspect_db(url, table_names) == {"alembic_version"}
    assert await inspect_db(url, current_revision) is None


def test_upgrade_outside_an_event_loop(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "sub" / "m.db")
    (tmp_path / "sub").mkdir()
    upgrade(url)
    assert (tmp_path / "sub" / "m.db").exists()


async def test_alembic_cli_with_url_argument(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "cli.db")
    alembic_cli("-x", f"url={url}", "upgrade", "head")
    assert await inspect_db(url, schema_diff) == []


async def test_alembic_cli_takes_url_from_settings(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "settings.db")
    alembic_cli("upgrade", "head", env={"FACESTREAM_DATABASE_URL": url})
    assert await inspect_db(url, current_revision) == "0003"


def test_offline_sql_for_postgresql() -> None:
    sql = alembic_cli("-x", "url=postgresql+asyncpg://u:p@127.0.0.1:1/db", "upgrade", "head", "--sql")
    assert "CREATE TABLE faces" in sql
    assert "BYTEA" in sql
    assert "ON DELETE CASCADE" in sql
    assert "CREATE INDEX ix_faces_person_id ON faces (person_id)" in sql
