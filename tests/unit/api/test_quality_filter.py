"""The caller's quality filter at the facade: resolved once, carried in the command, answered."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI

from schemas.events import EnrollFace, IdentifyFace
from tests.unit.api.factories import ENROLLER, IDENTIFIER, VIEWER, client, make_app


def _probe(data: bytes) -> dict[str, tuple[str, bytes, str]]:
    return {"image": ("probe.jpg", data, "image/jpeg")}


def _command(app: FastAPI):  # type: ignore[no-untyped-def]
    ((_, commands, _),) = app.state.gateway.requests
    return [envelope.payload for _, envelope in commands]


def test_identify_defaults_to_none_and_answers_quality(app: FastAPI) -> None:
    response = client(app, key=IDENTIFIER).post("/identify", files=_probe(b"FAKE:alice:1"))
    body = response.json()
    assert response.status_code == 200, body
    assert (body["quality"], body["low_quality"], body["quality_filter"]) == (0.9, False, "none")
    assert body["faces"][0]["quality"] == 0.9 and body["faces"][0]["low_quality"] is False
    (command,) = _command(app)
    assert isinstance(command, IdentifyFace) and command.quality_filter == "none"


def test_a_poor_face_is_answered_and_flagged(app: FastAPI) -> None:
    response = client(app, key=IDENTIFIER).post("/identify", files=_probe(b"FAKE:alice:1:0.10"))
    body = response.json()
    assert response.status_code == 200 and body["person_id"] == "alice"
    assert body["quality"] == 0.1 and body["low_quality"] is True


@pytest.mark.parametrize("chosen", ["none", "low", "medium", "high", "auto"])
def test_identify_carries_the_requested_filter(app: FastAPI, chosen: str) -> None:
    response = client(app, key=IDENTIFIER).post(
        "/identify", files=_probe(b"FAKE:alice:1"), params={"quality_filter": chosen}
    )
    assert response.status_code == 200, response.text
    assert _command(app)[0].quality_filter == chosen
    assert response.json()["quality_filter"] == chosen


def test_enroll_defaults_to_auto_and_carries_an_override(app: FastAPI) -> None:
    files = [("images", ("a.jpg", b"FAKE:alice:1", "image/jpeg"))]
    assert client(app, key=ENROLLER).post("/enroll/alice", files=files).status_code == 201
    (command,) = _command(app)
    assert isinstance(command, EnrollFace) and command.quality_filter == "auto"
    app.state.gateway.requests.clear()
    response = client(app, key=ENROLLER).post("/enroll/alice", files=files, params={"quality_filter": "none"})
    assert response.status_code == 201 and _command(app)[0].quality_filter == "none"


def test_the_settings_choose_the_default(tmp_path: Path) -> None:
    app = make_app(tmp_path, quality_filter_identify="medium", quality_filter_enroll="high")
    client(app, key=IDENTIFIER).post("/identify", files=_probe(b"FAKE:alice:1"))
    assert _command(app)[0].quality_filter == "medium"
    app.state.gateway.requests.clear()
    files = [("images", ("a.jpg", b"FAKE:alice:1", "image/jpeg"))]
    client(app, key=ENROLLER).post("/enroll/alice", files=files)
    assert _command(app)[0].quality_filter == "high"


@pytest.mark.parametrize("route", ["/identify", "/enroll/alice"])
def test_an_unknown_filter_is_a_422_with_a_code(app: FastAPI, route: str) -> None:
    files = (
        _probe(b"FAKE:alice:1")
        if route == "/identify"
        else [("images", ("a.jpg", b"FAKE:alice:1", "image/jpeg"))]
    )
    response = client(app).post(route, files=files, params={"quality_filter": "strict"})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_parameter"
    assert app.state.gateway.requests == []


def test_a_role_without_the_permission_cannot_choose(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    from api.auth import GRANTS, Permission, Role

    monkeypatch.setitem(GRANTS, Role.IDENTIFIER, frozenset({Permission.IDENTIFY}))
    response = client(app, key=IDENTIFIER).post(
        "/identify", files=_probe(b"FAKE:alice:1"), params={"quality_filter": "none"}
    )
    assert response.status_code == 403 and response.json()["code"] == "forbidden"
    assert client(app, key=VIEWER).post("/identify", files=_probe(b"FAKE:alice:1")).status_code == 403
