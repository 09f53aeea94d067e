"""The projection contract on SQLite (the embedded default), schema from models and from alembic."""

from __future__ import annotations

from db.projection import record_event_id
from tests.unit.db.contract import ProjectionContract


class TestSQLiteProjection(ProjectionContract):
    pass


def test_record_event_id_names_the_log_position() -> None:
    assert record_event_id("facestream.face.embeddings.v1", 2, 41) == ("facestream.face.embeddings.v1:2:41")
