"""Galleries on the real stack: two galleries with the same person ids never cross; a scoped
key stays in its gallery; one gallery on IVF-PQ beside one on flat; replaying one gallery
leaves the other answering; deleting a gallery erases its faces from the log, every replica
and the database, with a receipt."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.faults.log_records import count_records
from tests.integration.pipeline.stack import STAFF_KEY, Stack
from tests.integration.pipeline.test_end_to_end import HELD_BACK, PEOPLE, _files

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.models]

# The same three person ids in both galleries, each naming someone else in each.
STAFF = {"p1": "angelina_jolie", "p2": "matt_damon", "p3": "katy_perry"}
WATCH = {"p1": "george_clooney", "p2": "jennifer_aniston", "p3": "mark_zuckerberg"}


def call(stack: Stack, method: str, path: str, *, key: str | None = None, **kwargs: Any) -> httpx.Response:
    with stack.client() as client:
        if key is not None:
            client.headers["X-API-Key"] = key
        return client.request(method, path, **kwargs)


def identify(stack: Stack, gallery: str, person: str, **params: object) -> dict[str, Any]:
    photo = HELD_BACK[person]
    response = call(
        stack,
        "POST",
        f"/galleries/{gallery}/identify",
        files={"image": (photo.name, photo.read_bytes())},
        params={"top_k": 10, **params},
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def galleries(stack: Stack) -> Stack:
    for body in (
        {"id": "staff", "description": "flat"},
        {"id": "watch", "threshold": 0.4, "index": {"backend": "faiss-ivfpq", "options": {"nlist": 4}}},
    ):
        response = call(stack, "POST", "/galleries", json=body)
        assert response.status_code == 201, response.text
    for gallery, people in (("staff", STAFF), ("watch", WATCH)):
        for person_id, person in people.items():
            response = call(
                stack, "POST", f"/galleries/{gallery}/enroll/{person_id}", files=_files(PEOPLE[person][1:])
            )
            assert response.status_code == 201, response.text
    return stack


def test_same_person_ids_in_two_galleries_never_cross(galleries: Stack) -> None:
    stack = galleries
    for gallery, people, others in (("staff", STAFF, WATCH), ("watch", WATCH, STAFF)):
        for person_id, person in people.items():
            answer = stack.wait_for(
                f"{person} found in {gallery}",
                lambda g=gallery, p=person: (a := identify(stack, g, p)) and a["gallery_size"] > 0 and a,
            )
            assert answer["person_id"] == person_id, (gallery, person, answer)
            assert {c["person_id"] for c in answer["candidates"]} <= set(people)
        # The other gallery's people are strangers here, whatever id they have there.
        for person in others.values():
            answer = identify(stack, gallery, person)
            assert answer["unknown"], (gallery, person, answer)
    # The default gallery holds none of them.
    assert not any(c["person_id"] in STAFF for c in identify(stack, "default", STAFF["p1"])["candidates"])
    persons = call(stack, "GET", "/galleries/staff/persons").json()
    assert sorted(p["person_id"] for p in persons["items"]) == ["p1", "p2", "p3"]
    watch = call(stack, "GET", "/galleries/watch").json()
    assert watch["index"]["backend"] == "faiss-ivfpq" and watch["threshold"] == 0.4


def test_a_scoped_key_stays_in_its_gallery(galleries: Stack) -> None:
    stack = galleries
    photo = HELD_BACK[STAFF["p1"]]
    files = {"image": (photo.name, photo.read_bytes())}
    assert call(stack, "POST", "/galleries/staff/identify", key=STAFF_KEY, files=files).status_code == 200
    for method, path in (
        ("POST", "/galleries/watch/identify"),
        ("POST", "/identify"),
        ("GET", "/galleries/watch"),
        ("GET", "/galleries/watch/persons"),
        ("GET", "/galleries/watch/stats"),
        ("GET", "/stats"),
    ):
        response = call(stack, method, path, key=STAFF_KEY, files=files if method == "POST" else None)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["code"] == "forbidden"
    listed = call(stack, "GET", "/galleries", key=STAFF_KEY).json()["galleries"]
    assert [g["id"] for g in listed] == ["staff"]
    stats = call(stack, "GET", "/galleries/staff/stats", key=STAFF_KEY).json()
    assert stats["persons"] == 3 and all(r["size"] == stats["gallery_size"] for r in stats["replicas"])


def test_replaying_one_gallery_leaves_the_other_answering(galleries: Stack) -> None:
    stack = galleries
    before = identify(stack, "watch", WATCH["p2"])
    response = call(stack, "POST", "/galleries/watch/replay")
    assert response.status_code == 202, response.text
    # staff answers throughout, the same as ever.
    for _ in range(3):
        assert identify(stack, "staff", STAFF["p2"])["person_id"] == "p2"
    after = stack.wait_for(
        "watch rebuilt", lambda: (a := identify(stack, "watch", WATCH["p2"]))["person_id"] == "p2" and a
    )
    assert after["similarity"] == pytest.approx(before["similarity"], abs=1e-4)


def test_deleting_a_gallery_erases_it_everywhere_with_a_receipt(galleries: Stack) -> None:
    stack = galleries
    faces = {a["face_id"] for a in _enrolled_faces(stack, "watch")}
    assert faces
    accepted = call(stack, "DELETE", "/galleries/watch")
    assert accepted.status_code == 202, accepted.text
    erasure = accepted.json()
    receipt = stack.wait_for(
        "gallery erasure done",
        lambda: (r := call(stack, "GET", erasure["receipt"]).json())["status"] == "done" and r,
        timeout=60,
    )
    assert receipt["kind"] == "gallery" and receipt["face_count"] == len(faces)
    # The log itself: a tombstone for every face the gallery had.
    log = count_records(
        stack.env["FACESTREAM_KAFKA_BOOTSTRAP"], f"{stack.env['FACESTREAM_TOPIC_PREFIX']}.face.embeddings.v1"
    )
    assert all(log.tombstones[f] >= 1 for f in faces)
    # Gone from the API, and the id is free again: a new, empty gallery.
    stack.wait_for("watch gone", lambda: call(stack, "GET", "/galleries/watch").status_code == 404)
    assert call(stack, "POST", "/galleries", json={"id": "watch"}).status_code == 201
    assert call(stack, "GET", "/galleries/watch/persons").json()["items"] == []
    answer = call(stack, "POST", "/galleries/watch/identify", files=_probe(WATCH["p1"]))
    assert (answer.status_code == 422 and answer.json()["code"] == "empty_gallery") or (
        answer.status_code == 200 and answer.json()["gallery_size"] == 0
    ), answer.text
    # staff is untouched.
    assert identify(stack, "staff", STAFF["p3"])["person_id"] == "p3"


def _probe(person: str) -> dict[str, tuple[str, bytes]]:
    photo = HELD_BACK[person]
    return {"image": (photo.name, photo.read_bytes())}


def _enrolled_faces(stack: Stack, gallery: str) -> list[dict[str, Any]]:
    faces: list[dict[str, Any]] = []
    for person_id in ("p1", "p2", "p3"):
        response = call(stack, "GET", f"/galleries/{gallery}/persons/{person_id}")
        assert response.status_code == 200, response.text
        faces += response.json()["faces"]
    return faces
