"""Person reads from the projection, on SQLite."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import FastAPI

from db.projection import apply_face_embedded
from db.session import create_engine, create_sessionmaker
from tests.unit.api.factories import ENROLLER, VIEWER, client, make_app, settings
from tests.unit.api.test_errors import expect
from tests.unit.db.factories import face_embedded


async def _seed(url: str) -> None:
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session:
            for offset, (face, person) in enumerate([("f1", "alice"), ("f2", "alice"), ("f3", "bob")]):
                await apply_face_embedded(
                    session,
                    event_id=f"e{offset}",
                    fact=face_embedded(face, person),
                    topic="facestream.face.embeddings.v1",
                    partition=0,
                    offset=offset,
                )
            await session.commit()
    finally:
        await engine.dispose()


def seeded_app(tmp_path: Path) -> FastAPI:
    app = make_app(tmp_path)
    asyncio.run(_seed(settings(tmp_path).database_url))
    return app


def test_unknown_person_is_404(app: FastAPI) -> None:
    expect(client(app, key=VIEWER).get("/persons/nobody"), 404, "unknown_person")


def test_known_person(tmp_path: Path) -> None:
    app = seeded_app(tmp_path)
    response = client(app, key=VIEWER).get("/persons/alice")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["person_id"] == "alice"
    assert body["face_count"] == 2
    assert sorted(f["face_id"] for f in body["faces"]) == ["f1", "f2"]


def test_list_persons(tmp_path: Path) -> None:
    app = seeded_app(tmp_path)
    body = client(app, key=ENROLLER).get("/persons?limit=1&offset=1").json()
    assert body["total"] == 2
    assert (body["limit"], body["offset"]) == (1, 1)
    assert [p["person_id"] for p in body["items"]] == ["bob"]


def test_empty_list(app: FastAPI) -> None:
    body = client(app).get("/persons").json()
    assert body == {"items": [], "total": 0, "limit": 100, "offset": 0}


def test_database_without_tables_is_503(tmp_path: Path) -> None:
    app = make_app(tmp_path, tables=False)
    expect(client(app).get("/persons/alice"), 503, "unavailable")
