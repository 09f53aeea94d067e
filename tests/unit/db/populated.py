"""Migration 0003 on a populated single-gallery database (revision 0002), on any backend: the
rows move to the `default` gallery and still read through the queries; the downgrade refuses
while another gallery holds rows. Used by the SQLite suite and the PostgreSQL one."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.migrate import current_revision, downgrade, upgrade_async
from db.queries import count_faces, get_enrollment, get_gallery, get_person, list_galleries
from db.session import create_sessionmaker
from tests.unit.db.factories import MODEL, TOPIC, at, vector

# (statement, parameter rows) pairs, in the schema of revision 0002.
ROWS_0002: list[tuple[str, list[dict[str, Any]]]] = [
    (
        "INSERT INTO persons (person_id, display_name, metadata, created_at, updated_at) "
        "VALUES (:person_id, NULL, :metadata, :t, :t)",
        [{"person_id": p, "metadata": "{}", "t": at(1)} for p in ("alice", "bob")],
    ),
    (
        "INSERT INTO faces (face_id, person_id, enrollment_id, embedding, embedding_dim, model_id, "
        "model_pack, model_recognizer, model_version, quality, det_score, bbox, content_hash, "
        "image_path, filename, source_topic, source_partition, source_offset, created_at, updated_at) "
        "VALUES (:face_id, :person_id, 'e1', :embedding, 4, :model_id, 'default', 'fr_feature', '1', "
        "0.9, 0.95, :bbox, :hash, NULL, 'a.jpg', :topic, 0, :offset, :t, :t)",
        [
            {
                "face_id": face_id,
                "person_id": person_id,
                "embedding": vector(1.0, 0.0, 0.0, 0.0),
                "model_id": MODEL.id,
                "bbox": json.dumps({"x": 1, "y": 2, "width": 3, "height": 4}),
                "hash": f"sha256:{face_id}",
                "topic": TOPIC,
                "offset": n,
                "t": at(n),
            }
            for n, (face_id, person_id) in enumerate([("f1", "alice"), ("f2", "alice"), ("f3", "bob")])
        ],
    ),
    (
        "INSERT INTO enrollments (enrollment_id, person_id, image_count, accepted_count, "
        "rejected_count, outcomes, status, created_at, updated_at) "
        "VALUES ('e1', 'alice', 1, 1, 0, :outcomes, 'complete', :t, :t)",
        [{"outcomes": json.dumps([{"image_index": 0, "status": "accepted", "face_id": "f1"}]), "t": at(1)}],
    ),
    (
        "INSERT INTO person_erasures (person_id, erasure_id, barrier, outcomes_barrier, erased_at) "
        "VALUES ('carol', 'x1', :barrier, '{}', :t)",
        [{"barrier": json.dumps({"0": 7}), "t": at(2)}],
    ),
]


async def _insert_0002_rows(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        for statement, rows in ROWS_0002:
            await connection.execute(text(statement), rows)


async def _gallery_ids(engine: AsyncEngine, table: str) -> list[tuple[str, str]]:
    async with engine.connect() as connection:
        rows = await connection.execute(text(f"SELECT gallery_id, person_id FROM {table} ORDER BY person_id"))
        return [(g, p) for g, p in rows.tuples()]


async def check_populated_upgrade(url: str, engine: AsyncEngine) -> None:
    """`engine` is on the (empty) database at `url`."""
    await upgrade_async(url, revision="0002")
    await _insert_0002_rows(engine)
    await upgrade_async(url)
    async with engine.connect() as connection:
        assert await connection.run_sync(current_revision) == "0003"

    assert await _gallery_ids(engine, "persons") == [("default", "alice"), ("default", "bob")]
    assert await _gallery_ids(engine, "faces") == [("default", "alice")] * 2 + [("default", "bob")]
    assert await _gallery_ids(engine, "enrollments") == [("default", "alice")]
    assert await _gallery_ids(engine, "person_erasures") == [("default", "carol")]
    sessions = create_sessionmaker(engine)
    async with sessions() as session:
        alice = await get_person(session, person_id="alice")
        assert alice is not None
        assert [f.face_id for f in alice.faces] == ["f1", "f2"]
        assert alice.created_at == at(1)
        assert await count_faces(session) == 3
        enrollment = await get_enrollment(session, enrollment_id="e1")
        assert enrollment is not None
        assert enrollment.gallery == "default"
        default = await get_gallery(session, gallery="default")
        assert default is not None
        assert (default.state, default.person_count, default.face_count) == ("active", 2, 3)
        assert [g.gallery for g in await list_galleries(session)] == ["default"]

    # The faces' new foreign key holds: a face of an unknown (gallery, person) is refused, and
    # deleting a person still cascades to their faces.
    async with engine.connect() as connection:
        with pytest.raises(Exception, match=r"(?i)foreign key"):
            await connection.execute(
                text("UPDATE faces SET gallery_id = 'vip' WHERE face_id = 'f3'"),
            )
        await connection.rollback()
    async with engine.begin() as connection:
        await connection.execute(text("DELETE FROM persons WHERE person_id = 'bob'"))
    async with sessions() as session:
        assert await count_faces(session) == 2

    # Down again while only the default gallery holds rows; refused once another one does.
    await engine.dispose()  # SQLite: no connection of ours may hold the file while it copies
    await _downgrade_async(url, "0002")
    async with engine.connect() as connection:
        assert await connection.run_sync(current_revision) == "0002"
        rows = await connection.execute(text("SELECT person_id FROM persons ORDER BY person_id"))
        assert list(rows.scalars()) == ["alice"]
    await upgrade_async(url)
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO persons (gallery_id, person_id, metadata, created_at, updated_at) "
                "VALUES ('vip', 'alice', '{}', :t, :t)"
            ),
            {"t": at(3)},
        )
    await engine.dispose()
    with pytest.raises(RuntimeError, match="galleries other than 'default'"):
        await _downgrade_async(url, "0002")
    async with engine.connect() as connection:
        assert await connection.run_sync(current_revision) == "0003"


async def _downgrade_async(url: str, revision: str) -> None:
    await asyncio.to_thread(downgrade, url, revision=revision)
