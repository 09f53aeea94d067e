"""Galleries: created, listed, deleted (an erasure with a receipt) and replayed through the
galleries topic; every gallery route scoped by the key's galleries; policies per gallery."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from schemas.events import (
    EnrollFace,
    EraseGallery,
    ErasePerson,
    ErasureRequested,
    GalleryDefined,
    GalleryDeleted,
    GalleryErased,
    IdentifyFace,
)
from tests.unit.api.factories import ADMIN, API_KEYS, client, image, make_app
from tests.unit.api.test_errors import expect

SCOPED_KEYS = ",".join(
    [
        API_KEYS,
        "staff-enr:enroller@staff",
        "staff-idf:identifier@staff|watch",
        "staff-adm:admin@staff",
        "watch-enr:enroller@watch",
    ]
)


def app_with_galleries(tmp_path: Path, **overrides: Any) -> FastAPI:
    app = make_app(tmp_path, api_keys=SCOPED_KEYS, **overrides)
    for body in (
        {"id": "staff", "threshold": 0.7, "quality_filter_enroll": "high"},
        {"id": "watch", "index": {"backend": "faiss-ivfpq", "options": {"nlist": 8, "m": 8}}},
    ):
        response = client(app, ADMIN).post("/galleries", json=body)
        assert response.status_code == 201, response.text
    return app


def published(app: FastAPI, kind: type) -> list[tuple[str, str, Any]]:
    return [(t, k, e.payload) for t, k, e in app.state.gateway.published if isinstance(e.payload, kind)]


def test_a_gallery_is_a_record_on_the_galleries_topic(tmp_path: Path) -> None:
    app = app_with_galleries(tmp_path)
    defined = published(app, GalleryDefined)
    assert [(t, k) for t, k, _ in defined] == [
        (app.state.settings.topics.galleries, "staff"),
        (app.state.settings.topics.galleries, "watch"),
    ]
    body = client(app, ADMIN).get("/galleries/staff").json()
    assert body["threshold"] == 0.7 and body["quality_filter_enroll"] == "high"
    assert body["index"]["backend"] == "faiss-flat"  # the deployment's, written down at creation
    assert client(app, ADMIN).get("/galleries/watch").json()["index"]["backend"] == "faiss-ivfpq"
    listed = [g["id"] for g in client(app, ADMIN).get("/galleries").json()["galleries"]]
    assert listed == ["default", "staff", "watch"]


def test_creating_a_gallery_twice_or_with_bad_input_is_refused(tmp_path: Path) -> None:
    app = app_with_galleries(tmp_path)
    expect(client(app, ADMIN).post("/galleries", json={"id": "staff"}), 409, "gallery_exists")
    expect(client(app, ADMIN).post("/galleries", json={"id": "default"}), 409, "gallery_exists")
    expect(client(app, ADMIN).post("/galleries", json={"id": "Bad/Id"}), 422, "invalid_request")
    expect(
        client(app, ADMIN).post("/galleries", json={"id": "x", "index": {"backend": "nope"}}),
        422,
        "invalid_parameter",
    )
    expect(client(app, ADMIN).post("/galleries", json={"id": "y", "pack": "other"}), 422, "invalid_parameter")
    # A known pack that is not installed here.
    expect(
        client(app, ADMIN).post("/galleries", json={"id": "y", "pack": "buffalo_l"}), 422, "invalid_parameter"
    )
    # A gallery admin is not a deployment admin.
    expect(client(app, "staff-adm").post("/galleries", json={"id": "z"}), 403, "forbidden")


def test_enrollment_and_identification_carry_the_gallery_and_its_policies(tmp_path: Path) -> None:
    app = app_with_galleries(tmp_path)
    response = client(app, ADMIN).post("/galleries/staff/enroll/alice", files={"images": image("alice")})
    assert response.status_code == 201, response.text
    response = client(app, ADMIN).post("/enroll/alice", files={"images": image("alice")})
    assert response.status_code == 201, response.text
    commands = [e.payload for _, cmds, _ in app.state.gateway.requests for _, e in cmds]
    enrolls = [c for c in commands if isinstance(c, EnrollFace)]
    assert [(c.gallery, c.quality_filter) for c in enrolls] == [("staff", "high"), ("default", "auto")]

    client(app, "staff-idf").post("/galleries/staff/identify", files={"image": image("alice")})
    client(app, ADMIN).post("/galleries/watch/identify", files={"image": image("alice")})
    commands = [e.payload for _, cmds, _ in app.state.gateway.requests for _, e in cmds]
    identifies = [c for c in commands if isinstance(c, IdentifyFace)]
    # staff's threshold; watch has none of its own: the deployment's.
    assert [(c.gallery, c.threshold) for c in identifies] == [("staff", 0.7), ("watch", 0.5)]


def test_a_scoped_key_acts_only_in_its_galleries_and_sees_no_other(tmp_path: Path) -> None:
    app = app_with_galleries(tmp_path)
    enroller = client(app, "staff-enr")
    assert enroller.post("/galleries/staff/enroll/bob", files={"images": image("bob")}).status_code == 201
    expect(enroller.post("/galleries/watch/enroll/bob", files={"images": image("bob")}), 403, "forbidden")
    expect(enroller.post("/enroll/bob", files={"images": image("bob")}), 403, "forbidden")
    expect(enroller.get("/galleries/watch/persons"), 403, "forbidden")
    expect(enroller.get("/stats"), 403, "forbidden")
    # A gallery that does not exist answers like one the key may not see.
    expect(enroller.get("/galleries/nowhere/persons"), 403, "forbidden")
    expect(client(app, ADMIN).get("/galleries/nowhere/persons"), 404, "unknown_gallery")
    assert [g["id"] for g in enroller.get("/galleries").json()["galleries"]] == ["staff"]
    identifier = client(app, "staff-idf")
    assert [g["id"] for g in identifier.get("/galleries").json()["galleries"]] == ["staff", "watch"]
    # The role holds in its galleries only: an identifier of staff may not enroll there.
    expect(identifier.post("/galleries/staff/enroll/bob", files={"images": image("bob")}), 403, "forbidden")


def test_erasures_are_scoped_and_carry_the_gallery(tmp_path: Path) -> None:
    app = app_with_galleries(tmp_path)
    accepted = client(app, "staff-enr").delete("/galleries/staff/persons/alice")
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["gallery"] == "staff"
    ((_, key, command),) = published(app, ErasePerson)
    assert (key, command.gallery) == ("alice", "staff")
    receipt = accepted.json()["receipt"]
    assert client(app, "staff-enr").get(receipt).status_code == 200
    # Another gallery's key learns nothing of it.
    assert client(app, "enr").get(receipt).status_code == 200  # an unscoped enroller
    expect(client(app, "staff-idf").get(receipt), 403, "forbidden")  # sees staff, may not manage
    expect(client(app, "watch-enr").get(receipt), 404, "not_found")  # another gallery's key
    erase_elsewhere = client(app, "staff-enr").delete("/galleries/watch/faces/" + "ab" * 16)
    expect(erase_elsewhere, 403, "forbidden")


def test_deleting_a_gallery_is_an_erasure_with_a_receipt(tmp_path: Path) -> None:
    app = app_with_galleries(tmp_path)
    expect(client(app, "staff-enr").delete("/galleries/staff"), 403, "forbidden")
    expect(client(app, ADMIN).delete("/galleries/default"), 409, "default_gallery")
    accepted = client(app, "staff-adm").delete("/galleries/staff")
    assert accepted.status_code == 202, accepted.text
    body = accepted.json()
    assert body["kind"] == "gallery" and body["gallery"] == "staff"
    topics = app.state.settings.topics
    # The mark first (no process accepts the gallery's work after it), then the command.
    kinds = [type(e.payload) for _, _, e in app.state.gateway.published]
    assert kinds.index(GalleryDeleted) < kinds.index(EraseGallery) < kinds.index(ErasureRequested)
    ((topic, key, _),) = published(app, EraseGallery)
    assert (topic, key) == (topics.erasure_requests, "staff")
    expect(
        client(app, ADMIN).post("/galleries/staff/enroll/x", files={"images": image("x")}),
        409,
        "gallery_deleting",
    )
    assert client(app, ADMIN).get("/galleries/staff").json()["state"] == "deleting"

    receipt = client(app, "staff-adm").get(body["receipt"]).json()
    assert receipt["status"] == "pending" and receipt["waiting_for"][0] == "eraser"
    fact = GalleryErased(
        erasure_id=body["erasure_id"], gallery="staff", face_count=3, requested_by="k", tombstones={0: 1}
    )
    app.state.ledger.note(fact, at=datetime.now(UTC), partition=0, offset=11)
    app.state.ledger.committed = {(topics.erasures, 0): 12, (topics.embeddings, 0): 2}
    receipt = client(app, "staff-adm").get(body["receipt"]).json()
    assert receipt["kind"] == "gallery" and receipt["face_count"] == 3
    assert receipt["status"] == "done", receipt


def test_replay_is_a_new_generation_of_one_gallery(tmp_path: Path) -> None:
    app = app_with_galleries(tmp_path)
    response = client(app, "staff-adm").post("/galleries/staff/replay")
    assert response.status_code == 202, response.text
    assert response.json() == {"gallery": "staff", "generation": 1}
    assert client(app, ADMIN).get("/galleries/staff").json()["generation"] == 1
    assert client(app, ADMIN).get("/galleries/watch").json()["generation"] == 0
    expect(client(app, "staff-adm").post("/galleries/watch/replay"), 403, "forbidden")
