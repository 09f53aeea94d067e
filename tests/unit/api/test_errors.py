"""The error contract: every error is JSON with a machine-readable `code`, never a 500 for bad input."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.unit.api.factories import ENROLLER, IDENTIFIER, VIEWER, client, image


def expect(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    return body


def enroll_files(n: int = 1) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("images", (f"a{i}.jpg", image("alice", str(i)), "image/jpeg")) for i in range(n)]


def identify_files() -> dict[str, tuple[str, bytes, str]]:
    return {"image": ("probe.jpg", image("alice", "p"), "image/jpeg")}


# --- authentication and roles


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/enroll/alice"),
        ("post", "/identify"),
        ("get", "/persons/alice"),
        ("get", "/persons"),
        ("get", "/stats"),
    ],
)
def test_missing_key_is_unauthorized(app: FastAPI, method: str, path: str) -> None:
    response = getattr(client(app, key=None), method)(path)
    expect(response, 401, "unauthorized")


def test_wrong_key_is_unauthorized(app: FastAPI) -> None:
    expect(client(app, key="nope").post("/identify", files=identify_files()), 401, "unauthorized")
    expect(client(app, key="").post("/identify", files=identify_files()), 401, "unauthorized")
    expect(client(app, key="admin-key ").get("/persons"), 401, "unauthorized")


def test_unauthorized_wins_over_invalid_input(app: FastAPI) -> None:
    expect(client(app, key=None).post("/enroll/bad%20id!"), 401, "unauthorized")


@pytest.mark.parametrize(
    ("key", "method", "path", "kwargs"),
    [
        (VIEWER, "post", "/enroll/alice", {"files": enroll_files()}),
        (IDENTIFIER, "post", "/enroll/alice", {"files": enroll_files()}),
        (VIEWER, "post", "/identify", {"files": identify_files()}),
        (ENROLLER, "post", "/identify", {"files": identify_files()}),
        (IDENTIFIER, "get", "/persons/alice", {}),
        (IDENTIFIER, "get", "/stats", {}),
    ],
)
def test_role_without_the_right_is_forbidden(
    app: FastAPI, key: str, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    expect(getattr(client(app, key=key), method)(path, **kwargs), 403, "forbidden")
    assert app.state.gateway.requests == []


# --- identifiers and parameters


@pytest.mark.parametrize(
    "person_id", ["bad%20id!", "x" * 129, "%C3%A9t%C3%A9", "a%00b", "semi;colon", "%2E%2E%5C", "alice%0A"]
)
def test_invalid_person_id(app: FastAPI, person_id: str) -> None:
    expect(client(app).post(f"/enroll/{person_id}", files=enroll_files()), 422, "invalid_person_id")
    expect(client(app).get(f"/persons/{person_id}"), 422, "invalid_person_id")
    assert app.state.gateway.requests == []


def test_longest_valid_person_id_is_accepted(app: FastAPI) -> None:
    response = client(app).post(f"/enroll/{'x' * 128}", files=enroll_files())
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "query",
    [
        "top_k=0",
        "top_k=101",
        "top_k=-1",
        "top_k=abc",
        "top_k=1.5",
        "threshold=2",
        "threshold=-1.01",
        "threshold=abc",
        "threshold=nan",
        "threshold=inf",
        "threshold=",
    ],
)
def test_invalid_identify_parameter(app: FastAPI, query: str) -> None:
    response = client(app, key=IDENTIFIER).post(f"/identify?{query}", files=identify_files())
    body = expect(response, 422, "invalid_parameter")
    assert body["details"]
    assert app.state.gateway.requests == []


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "offset=-1", "limit=x"])
def test_invalid_list_parameter(app: FastAPI, query: str) -> None:
    expect(client(app).get(f"/persons?{query}"), 422, "invalid_parameter")


# --- bodies


def test_missing_multipart_field(app: FastAPI) -> None:
    expect(client(app).post("/enroll/alice"), 422, "invalid_request")
    expect(client(app).post("/identify"), 422, "invalid_request")
    wrong_field = {"photo": ("p.jpg", image(), "image/jpeg")}
    expect(client(app).post("/enroll/alice", files=wrong_field), 422, "invalid_request")
    expect(client(app).post("/identify", files=wrong_field), 422, "invalid_request")


def test_text_field_instead_of_file(app: FastAPI) -> None:
    expect(client(app).post("/identify", data={"image": "FAKE:alice:1"}), 422, "invalid_request")
    expect(client(app).post("/enroll/alice", data={"images": "FAKE:alice:1"}), 422, "invalid_request")


@pytest.mark.parametrize("path", ["/enroll/alice", "/identify"])
def test_json_body_instead_of_multipart(app: FastAPI, path: str) -> None:
    response = client(app).post(path, json={"image": "FAKE:alice:1"})
    assert 400 <= response.status_code < 500
    assert response.json()["code"] in {"invalid_request", "unsupported_format"}


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", b"--x\r\n"),
        ("multipart/form-data; boundary=zzz", b"garbage without boundaries"),
        (
            "multipart/form-data; boundary=zzz",
            b"--zzz\r\nContent-Disposition: form-data\r\n\r\nx\r\n--zzz--\r\n",
        ),
        ("application/x-www-form-urlencoded", b"image=%ZZ"),
        ("text/plain", b"\xff\xfe\x00"),
    ],
)
def test_malformed_bodies_are_client_errors(app: FastAPI, content_type: str, body: bytes) -> None:
    for path in ("/enroll/alice", "/identify"):
        response = client(app).post(path, content=body, headers={"Content-Type": content_type})
        assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
        assert response.json()["code"]


def test_unknown_route(app: FastAPI) -> None:
    expect(client(app).get("/nope"), 404, "not_found")
    expect(client(app, key=None).get("/enroll"), 404, "not_found")


def test_wrong_method(app: FastAPI) -> None:
    expect(client(app).get("/identify"), 405, "method_not_allowed")
    expect(client(app).delete("/metrics"), 405, "method_not_allowed")
    expect(client(app).put("/enroll/alice"), 405, "method_not_allowed")
