"""DELETE /persons/{id} and /faces/{id}: tombstones, an erasure fact, an audit record, a receipt."""

from __future__ import annotations

from pathlib import Path

from schemas.events import AuditRecord, PersonErased
from tests.unit.api.factories import ENROLLER, IDENTIFIER, VIEWER, client, settings
from tests.unit.api.test_errors import expect
from tests.unit.api.test_persons import seeded_app


def test_erasing_a_person_tombstones_every_face_and_returns_a_receipt(tmp_path: Path) -> None:
    app = seeded_app(tmp_path)
    topics = settings(tmp_path).topics

    response = client(app, ENROLLER).delete("/persons/alice")

    assert response.status_code == 200, response.text
    receipt = response.json()
    assert sorted(receipt["face_ids"]) == ["f1", "f2"]
    assert sorted(t["face_id"] for t in receipt["tombstones"]) == ["f1", "f2"]
    gateway = app.state.gateway
    assert sorted(gateway.tombstoned) == sorted(
        (topic, face) for topic in (topics.embeddings, topics.enrollment_images) for face in ("f1", "f2")
    )
    kinds = {(topic, type(envelope.payload)) for topic, _, envelope in gateway.published}
    assert (topics.erasures, PersonErased) in kinds
    assert (topics.audit, AuditRecord) in kinds
    audit = next(e.payload for t, _, e in gateway.published if t == topics.audit)
    assert audit.action == "erase_person" and audit.person_id == "alice" and audit.role == "enroller"


def test_erasing_one_face(tmp_path: Path) -> None:
    app = seeded_app(tmp_path)
    response = client(app, ENROLLER).delete("/faces/" + "f3".ljust(32, "0"))
    expect(response, 404, "unknown_face")


def test_unknown_person_is_404_and_nothing_is_published(tmp_path: Path) -> None:
    app = seeded_app(tmp_path)
    expect(client(app, ENROLLER).delete("/persons/nobody"), 404, "unknown_person")
    assert app.state.gateway.tombstoned == []


def test_erasure_needs_the_manage_right(tmp_path: Path) -> None:
    app = seeded_app(tmp_path)
    expect(client(app, VIEWER).delete("/persons/alice"), 403, "forbidden")
    expect(client(app, IDENTIFIER).delete("/persons/alice"), 403, "forbidden")


def test_face_id_is_validated(tmp_path: Path) -> None:
    app = seeded_app(tmp_path)
    expect(client(app, ENROLLER).delete("/faces/not-a-face-id"), 422, "invalid_request")
