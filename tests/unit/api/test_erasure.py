"""DELETE /persons/{id} and /faces/{id} publish commands and answer 202 without the database;
GET /erasures/{id} is the receipt, pending until every replica and the projection applied it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from schemas.events import (
    AuditRecord,
    EraseFace,
    ErasePerson,
    ErasureRequested,
    FaceErased,
    PersonErased,
    ReplicaStatus,
)
from tests.unit.api.factories import (
    ENROLLER,
    IDENTIFIER,
    VIEWER,
    FakeReplicas,
    client,
    make_app,
    replica_status,
    settings,
)
from tests.unit.api.test_errors import expect

FACE = "ab" * 16


def shard(replica_id: str, group: str, partitions: list[int], applied: dict[int, int]) -> ReplicaStatus:
    return replica_status(replica_id).model_copy(
        update={"group": group, "partitions": partitions, "applied_offsets": applied, "total_partitions": 2}
    )


def erase_alice(app: FastAPI) -> dict[str, Any]:
    response = client(app, ENROLLER).delete("/persons/alice")
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


def eraser_answers(app: FastAPI, erasure_id: str, *, tombstones: dict[int, int], found: bool = True) -> None:
    """What the eraser writes on the ledger, at ledger partition 0, offset 7."""
    fact = PersonErased(
        erasure_id=erasure_id,
        person_id="alice",
        face_ids=["f1", "f2"] if found else [],
        requested_by="k",
        tombstones=tombstones,
        barrier={0: 3, 1: 4},
    )
    app.state.ledger.note(fact, at=datetime.now(UTC), partition=0, offset=7)


def receipt(app: FastAPI, erasure_id: str) -> dict[str, Any]:
    response = client(app, ENROLLER).get(f"/erasures/{erasure_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_erasing_a_person_is_a_command_ordered_with_the_persons_enrollments(tmp_path: Path) -> None:
    # No tables: the facade must not need the database to erase.
    app = make_app(tmp_path, tables=False, database_url="postgresql+asyncpg://x:y@127.0.0.1:9/none")
    topics = settings(tmp_path).topics

    accepted = erase_alice(app)

    assert accepted["status"] == "pending" and accepted["kind"] == "person"
    assert accepted["receipt"] == f"/erasures/{accepted['erasure_id']}"
    published = app.state.gateway.published
    (command,) = [(t, k, e.payload) for t, k, e in published if isinstance(e.payload, ErasePerson)]
    assert command[:2] == (topics.enroll_requests, "alice")  # same topic and key as enrollments
    assert command[2].erasure_id == accepted["erasure_id"] and command[2].barrier == {}
    assert accepted["command"] == {"topic": topics.enroll_requests, "partition": 0, "offset": 0}
    kinds = {(topic, type(envelope.payload)) for topic, _, envelope in published}
    assert (topics.erasures, ErasureRequested) in kinds
    audit = next(e.payload for t, _, e in published if t == topics.audit)
    assert isinstance(audit, AuditRecord)
    assert audit.action == "erase_person" and audit.person_id == "alice" and audit.role == "enroller"


def test_a_receipt_waits_for_the_eraser_then_the_replicas_then_the_projection(tmp_path: Path) -> None:
    app = make_app(tmp_path, replicas=FakeReplicas(shard("r1", "replicas", [0, 1], {0: 5, 1: 5})))
    erasure_id = erase_alice(app)["erasure_id"]
    topics = settings(tmp_path).topics

    first = receipt(app, erasure_id)
    assert (first["status"], first["waiting_for"]) == ("pending", ["eraser", "projection"])

    eraser_answers(app, erasure_id, tombstones={0: 9, 1: 4})
    second = receipt(app, erasure_id)
    assert second["status"] == "pending" and second["waiting_for"] == ["replicas", "projection"]
    assert second["face_ids"] == ["f1", "f2"]
    assert second["tombstones"] == [{"partition": 0, "offset": 9}, {"partition": 1, "offset": 4}]
    assert second["replicas"] == [
        {"replica_id": "r1", "group": "replicas", "partitions": [0, 1], "applied": False}
    ]

    app.state.replicas = FakeReplicas(shard("r1", "replicas", [0, 1], {0: 10, 1: 5}))
    third = receipt(app, erasure_id)
    assert third["waiting_for"] == ["projection"] and third["shards"][0]["applied"] is True

    # The projector committed past the tombstones but not yet past the ledger's fact.
    app.state.ledger.committed = {
        (topics.embeddings, 0): 10,
        (topics.embeddings, 1): 5,
        (topics.erasures, 0): 7,
    }
    assert receipt(app, erasure_id)["status"] == "pending"
    app.state.ledger.committed[(topics.erasures, 0)] = 8
    done = receipt(app, erasure_id)
    assert (done["status"], done["waiting_for"], done["projection_applied"]) == ("done", [], True)


def test_with_two_shard_groups_both_must_apply(tmp_path: Path) -> None:
    groups = FakeReplicas(shard("a1", "shard-a", [0], {0: 10}), shard("b1", "shard-b", [1], {1: 2}))
    app = make_app(tmp_path, replicas=groups)
    erasure_id = erase_alice(app)["erasure_id"]
    eraser_answers(app, erasure_id, tombstones={0: 9, 1: 4})
    pending = receipt(app, erasure_id)
    assert [(s["group"], s["applied"]) for s in pending["shards"]] == [("shard-a", True), ("shard-b", False)]
    assert "replicas" in pending["waiting_for"]
    app.state.replicas = FakeReplicas(
        shard("a1", "shard-a", [0], {0: 10}), shard("b1", "shard-b", [1], {1: 5})
    )
    assert "replicas" not in receipt(app, erasure_id)["waiting_for"]


def test_a_person_the_log_never_held_is_a_404(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    erasure_id = erase_alice(app)["erasure_id"]
    eraser_answers(app, erasure_id, tombstones={}, found=False)
    expect(client(app, ENROLLER).get(f"/erasures/{erasure_id}"), 404, "unknown_person")


def test_an_unknown_erasure_id_is_a_404(tmp_path: Path) -> None:
    expect(client(make_app(tmp_path), ENROLLER).get("/erasures/" + "0" * 32), 404, "not_found")
    expect(client(make_app(tmp_path / "b"), ENROLLER).get("/erasures/nope"), 422, "invalid_request")


def test_erasing_one_face(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    topics = settings(tmp_path).topics
    response = client(app, ENROLLER).delete(f"/faces/{FACE}")
    assert response.status_code == 202, response.text
    erasure_id = response.json()["erasure_id"]
    (command,) = [
        (t, k, e.payload) for t, k, e in app.state.gateway.published if isinstance(e.payload, EraseFace)
    ]
    assert command[:2] == (topics.erasure_requests, FACE)
    missing = FaceErased(erasure_id=erasure_id, face_id=FACE, person_id=None, requested_by="k")
    app.state.ledger.note(missing, at=datetime.now(UTC), partition=0, offset=1)
    expect(client(app, ENROLLER).get(f"/erasures/{erasure_id}"), 404, "unknown_face")


def test_broker_down_is_503_and_nothing_is_claimed(tmp_path: Path) -> None:
    from core.errors import ErrorCode, FacestreamError

    app = make_app(tmp_path)
    app.state.gateway.error = FacestreamError(ErrorCode.UNAVAILABLE, "broker unavailable")
    expect(client(app, ENROLLER).delete("/persons/alice"), 503, "unavailable")
    assert app.state.ledger.entries == {}


def test_erasure_needs_the_manage_right(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    expect(client(app, VIEWER).delete("/persons/alice"), 403, "forbidden")
    expect(client(app, IDENTIFIER).delete("/persons/alice"), 403, "forbidden")
    expect(client(app, VIEWER).get("/erasures/" + "0" * 32), 403, "forbidden")


def test_ids_are_validated(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    expect(client(app, ENROLLER).delete("/faces/not-a-face-id"), 422, "invalid_request")
    expect(client(app, ENROLLER).delete("/persons/bad id!"), 422, "invalid_person_id")
