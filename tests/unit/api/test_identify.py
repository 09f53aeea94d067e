"""POST /identify against a fake gateway and fake replica tracker."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from core.errors import ErrorCode, FacestreamError
from schemas.events import IdentifyFace
from tests.unit.api.factories import (
    ADMIN,
    IDENTIFIER,
    FakeGateway,
    FakeReplicas,
    client,
    image,
    make_app,
    replica_status,
    too_large_image,
)
from tests.unit.api.test_errors import expect


def probe(data: bytes = b"FAKE:alice:probe") -> dict[str, tuple[str, bytes, str]]:
    return {"image": ("probe.jpg", data, "image/jpeg")}


def test_known_person(app: FastAPI) -> None:
    response = client(app, key=IDENTIFIER).post("/identify", files=probe())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["person_id"] == "alice"
    assert body["similarity"] == 0.9
    assert body["unknown"] is False
    assert body["threshold"] == 0.5
    assert body["model"] == "fake/fake@1"
    assert body["candidates"] == [
        {"person_id": "alice", "similarity": 0.9},
        {"person_id": "bob", "similarity": 0.1},
    ]
    assert body["request_id"]
    assert body["gallery_size"] == 2
    assert set(body["bbox"]) == {"x", "y", "width", "height"}

    ((topic, commands, correlation_id),) = app.state.gateway.requests
    assert topic == "facestream.identify.requests.v1"
    ((key, envelope),) = commands
    assert key == correlation_id == envelope.correlation_id == body["request_id"]
    assert isinstance(envelope.payload, IdentifyFace)
    # The facade resolved the policy from its own settings and carries it in the command.
    assert (envelope.payload.top_k, envelope.payload.threshold, envelope.payload.source) == (5, 0.5, "api")


def test_unknown_person(app: FastAPI) -> None:
    body = client(app).post("/identify", files=probe(image("stranger"))).json()
    assert body["person_id"] is None
    assert body["unknown"] is True
    assert body["similarity"] == 0.1
    assert [c["person_id"] for c in body["candidates"]] == ["alice", "bob"]


def test_empty_gallery(tmp_path: Path) -> None:
    app = make_app(tmp_path, gateway=FakeGateway(gallery=()))
    body = client(app).post("/identify", files=probe()).json()
    assert (body["person_id"], body["similarity"], body["unknown"], body["candidates"]) == (
        None,
        None,
        True,
        [],
    )


def test_parameters_travel_with_the_command(app: FastAPI) -> None:
    response = client(app, key=IDENTIFIER).post("/identify?top_k=1&threshold=0.95", files=probe())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["threshold"] == 0.95
    assert body["unknown"] is True
    assert len(body["candidates"]) == 1
    command = app.state.gateway.requests[0][1][0][1].payload
    assert (command.top_k, command.threshold) == (1, 0.95)


def test_boundary_parameters_are_valid(app: FastAPI) -> None:
    for query in ("top_k=1", "top_k=100", "threshold=-1", "threshold=1", "threshold=0"):
        assert client(app).post(f"/identify?{query}", files=probe()).status_code == 200, query


def test_no_face_is_422(app: FastAPI) -> None:
    expect(client(app).post("/identify", files=probe(b"FAKE-NOFACE")), 422, "no_face")


def test_undecodable_image_is_422(app: FastAPI) -> None:
    expect(client(app).post("/identify", files=probe(b"\x00\x01garbage")), 422, "undecodable_image")
    expect(client(app).post("/identify", files=probe(b"")), 422, "undecodable_image")


def test_too_large_image_is_413(app: FastAPI) -> None:
    expect(client(app).post("/identify", files=probe(too_large_image())), 413, "image_too_large")
    assert app.state.gateway.requests == []


def test_no_ready_replica_is_503(tmp_path: Path) -> None:
    for replicas in (FakeReplicas(), FakeReplicas(replica_status(ready=False))):
        app = make_app(tmp_path, replicas=replicas, tables=False)
        expect(client(app).post("/identify", files=probe()), 503, "unavailable")
        assert app.state.gateway.requests == []


def test_gateway_timeout_is_504(app: FastAPI) -> None:
    app.state.gateway.error = FacestreamError(ErrorCode.TIMEOUT, "no reply within 30s")
    expect(client(app, key=ADMIN).post("/identify", files=probe()), 504, "timeout")


def test_broker_not_connected_is_503(app: FastAPI) -> None:
    app.state.gateway.started = False
    expect(client(app).post("/identify", files=probe()), 503, "unavailable")


def test_unknown_failure_code_from_the_pipeline_is_not_leaked_as_500(app: FastAPI) -> None:
    """A reply code the API does not know maps to internal_error, which is an honest 500."""
    gateway = app.state.gateway
    original = gateway._identified

    def odd(command):  # type: ignore[no-untyped-def]
        failed = original(command.model_copy(update={"image": b"FAKE-NOFACE"}))
        return failed.model_copy(update={"error": failed.error.model_copy(update={"code": "model_mismatch"})})

    gateway._identified = odd
    expect(client(app).post("/identify", files=probe()), 409, "model_mismatch")


def test_min_offsets_are_validated_and_forwarded(app: FastAPI) -> None:
    expect(
        client(app).post("/identify", files=probe(), params={"min_offsets": "0:x"}), 422, "invalid_parameter"
    )
    response = client(app).post("/identify", files=probe(), params={"min_offsets": "0:41,2:17"})
    assert response.status_code == 200, response.text
    _, commands, _ = app.state.gateway.requests[-1]
    assert commands[0][1].payload.min_offsets == {0: 41, 2: 17}


def test_the_threshold_set_on_the_facade_alone_decides(tmp_path: Path) -> None:
    """FACESTREAM_THRESHOLD read by the facade changes answers: nothing downstream re-decides."""
    lenient = make_app(tmp_path / "lenient", threshold=0.85)
    strict = make_app(tmp_path / "strict", threshold=0.95)
    assert client(lenient, key=IDENTIFIER).post("/identify", files=probe()).json()["person_id"] == "alice"
    body = client(strict, key=IDENTIFIER).post("/identify", files=probe()).json()
    assert body["unknown"] is True and body["person_id"] is None and body["threshold"] == 0.95
    ((_, ((_, envelope),), _),) = strict.state.gateway.requests
    assert envelope.payload.threshold == 0.95
