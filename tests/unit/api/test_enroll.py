"""POST /enroll/{person_id} against a fake gateway."""

from __future__ import annotations

from fastapi import FastAPI

from core.errors import ErrorCode, FacestreamError
from schemas.events import EnrollFace
from tests.unit.api.factories import ENROLLER, client, image, too_large_image
from tests.unit.api.test_errors import expect


def files(*images: tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("images", (name, data, "image/jpeg")) for name, data in images]


def test_accepted_and_rejected_images(app: FastAPI) -> None:
    response = client(app, key=ENROLLER).post(
        "/enroll/jane.doe@example:1",
        files=files(
            ("a.jpg", image("jane", "1")), ("none.jpg", b"FAKE-NOFACE"), ("b.jpg", image("jane", "2"))
        ),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["person_id"] == "jane.doe@example:1"
    assert body["model"] == "fake/fake@1"
    assert body["enrollment_id"]
    assert [a["filename"] for a in body["accepted"]] == ["a.jpg", "b.jpg"]
    for accepted in body["accepted"]:
        assert len(accepted["face_id"]) == 32
        assert 0.0 <= accepted["quality"] <= 1.0
        assert set(accepted["bbox"]) == {"x", "y", "width", "height"}
    assert body["rejected"] == [
        {"filename": "none.jpg", "reason": "no_face", "message": body["rejected"][0]["message"]}
    ]

    ((topic, commands, correlation_id),) = app.state.gateway.requests
    assert topic == "facestream.enroll.requests.v1"
    assert correlation_id == body["enrollment_id"]
    assert [key for key, _ in commands] == ["jane.doe@example:1"] * 3
    payloads = [e.payload for _, e in commands]
    assert all(isinstance(p, EnrollFace) for p in payloads)
    assert [(p.image_index, p.image_count) for p in payloads] == [(0, 3), (1, 3), (2, 3)]


def test_same_photo_twice_gives_the_same_face_id(app: FastAPI) -> None:
    first = client(app).post("/enroll/alice", files=files(("a.jpg", image())))
    second = client(app).post("/enroll/alice", files=files(("a.jpg", image())))
    assert first.json()["accepted"][0]["face_id"] == second.json()["accepted"][0]["face_id"]


def test_no_accepted_image_is_422_with_the_common_reason(app: FastAPI) -> None:
    response = client(app).post(
        "/enroll/alice", files=files(("1.jpg", b"FAKE-NOFACE"), ("2.jpg", b"FAKE-NOFACE"))
    )
    body = expect(response, 422, "no_face")
    assert body["person_id"] == "alice"
    assert [r["filename"] for r in body["rejected"]] == ["1.jpg", "2.jpg"]
    assert {r["reason"] for r in body["rejected"]} == {"no_face"}


def test_no_accepted_image_with_mixed_reasons(app: FastAPI) -> None:
    response = client(app).post(
        "/enroll/alice", files=files(("1.jpg", b"FAKE-NOFACE"), ("2.png", b"\x89PNG not an image"))
    )
    body = expect(response, 422, "no_accepted_image")
    assert sorted(r["reason"] for r in body["rejected"]) == ["no_face", "undecodable_image"]


def test_too_large_image_is_rejected_without_being_sent(app: FastAPI) -> None:
    response = client(app).post(
        "/enroll/alice", files=files(("big.jpg", too_large_image()), ("ok.jpg", image()))
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert [a["filename"] for a in body["accepted"]] == ["ok.jpg"]
    assert [(r["filename"], r["reason"]) for r in body["rejected"]] == [("big.jpg", "image_too_large")]
    ((_, commands, _),) = app.state.gateway.requests
    assert len(commands) == 1


def test_only_a_too_large_image(app: FastAPI) -> None:
    body = expect(
        client(app).post("/enroll/alice", files=files(("big.jpg", too_large_image()))), 422, "image_too_large"
    )
    assert body["rejected"][0]["filename"] == "big.jpg"
    assert app.state.gateway.requests == []


def test_empty_image(app: FastAPI) -> None:
    body = expect(
        client(app).post("/enroll/alice", files=files(("empty.jpg", b""))), 422, "undecodable_image"
    )
    assert body["rejected"][0]["reason"] == "undecodable_image"


def test_too_many_images(app: FastAPI) -> None:
    many = files(*[(f"{i}.jpg", image("alice", str(i))) for i in range(17)])
    expect(client(app).post("/enroll/alice", files=many), 422, "invalid_request")
    assert app.state.gateway.requests == []


def test_gateway_timeout_is_504(app: FastAPI) -> None:
    app.state.gateway.error = FacestreamError(ErrorCode.TIMEOUT, "no reply within 30s")
    expect(client(app).post("/enroll/alice", files=files(("a.jpg", image()))), 504, "timeout")


def test_broker_down_is_503(app: FastAPI) -> None:
    app.state.gateway.started = False
    expect(client(app).post("/enroll/alice", files=files(("a.jpg", image()))), 503, "unavailable")
    app.state.gateway.started = True
    app.state.gateway.error = FacestreamError(ErrorCode.UNAVAILABLE, "broker unavailable")
    expect(client(app).post("/enroll/alice", files=files(("a.jpg", image()))), 503, "unavailable")


def test_hostile_filenames_are_echoed_not_trusted(app: FastAPI) -> None:
    response = client(app).post("/enroll/alice", files=files(("../../etc/passwd\x00.jpg", image())))
    assert response.status_code == 201, response.text
    assert response.json()["accepted"][0]["filename"].endswith(".jpg")


def test_part_without_filename_is_a_text_field(app: FastAPI) -> None:
    response = client(app).post("/enroll/alice", files=files(("", image())))
    expect(response, 422, "invalid_request")
