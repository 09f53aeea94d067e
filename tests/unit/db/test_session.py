"""Engine factories and the health ping."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import IntegrityError

from db.models import Base, Face, Person
from db.projection import apply_face_embedded
from db.session import create_engine, create_sessionmaker, ping
from tests.unit.db.conftest import sqlite_url
from tests.unit.db.factories import TOPIC, face_embedded


async def test_ping_sqlite_and_parent_folder_created(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "facestream.db"
    engine = create_engine(sqlite_url(path))
    try:
        assert await ping(engine)
        assert path.exists()
    finally:
        await engine.dispose()


async def test_ping_unreachable_database_is_false() -> None:
    engine = create_engine("postgresql+asyncpg://u:p@127.0.0.1:9/nothing")
    try:
        assert not await ping(engine, timeout_s=5)
    finally:
        await engine.dispose()


async def test_ping_times_out_on_a_silent_server() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accept, never answer the startup message

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    engine = create_engine(f"postgresql+asyncpg://u:p@127.0.0.1:{port}/nothing")
    try:
        started = time.monotonic()
        assert not await ping(engine, timeout_s=0.3)
        assert time.monotonic() - started < 5
    finally:
        await engine.dispose()
        server.close()


async def test_sqlite_enforces_foreign_keys_and_cascade(tmp_path: Path) -> None:
    engine = create_engine(sqlite_url(tmp_path / "fk.db"))
    sessions = create_sessionmaker(engine)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
            assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar() == 1
        async with sessions() as session:
            await apply_face_embedded(
                session, event_id="e", fact=face_embedded(), topic=TOPIC, partition=0, offset=0
            )
            await session.commit()
            await session.execute(delete(Person))
            await session.commit()
            assert await session.scalar(select(func.count()).select_from(Face)) == 0
        async with sessions() as session:
            session.add(
                Face(
                    face_id="orphan", person_id="nobody", enrollment_id="e", embedding=b"",
                    embedding_dim=0, model_id="m", model_pack="p", model_recognizer="r",
                    model_version="1", quality=0.0, det_score=0.0, bbox={}, content_hash="h",
                    source_topic="t", source_partition=0, source_offset=0,
                )
            )  # fmt: skip
            with pytest.raises(IntegrityError):
                await session.commit()
    finally:
        await engine.dispose()
