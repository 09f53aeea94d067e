"""Body limits: an oversized request is a 413 payload_too_large, read no further."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI

from tests.unit.api.factories import ADMIN, MAX_REQUEST_BYTES, client, image
from tests.unit.api.test_errors import expect


def multipart(size: int) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="image"; filename="big.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + b"FAKE:a:1:"
        + b"0" * size
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def test_declared_length_over_the_limit(app: FastAPI) -> None:
    files = [("images", (f"{i}.jpg", image("a", str(i)) + b" " * 15_000, "image/jpeg")) for i in range(8)]
    expect(client(app).post("/enroll/alice", files=files), 413, "payload_too_large")
    assert app.state.gateway.requests == []


def test_declared_length_over_the_limit_on_identify(app: FastAPI) -> None:
    body, content_type = multipart(MAX_REQUEST_BYTES + 1)
    response = client(app).post("/identify", content=body, headers={"Content-Type": content_type})
    expect(response, 413, "payload_too_large")


def test_streamed_body_over_the_limit(app: FastAPI) -> None:
    body, content_type = multipart(3 * MAX_REQUEST_BYTES)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    response = client(app).post("/identify", content=chunks(), headers={"Content-Type": content_type})
    assert "content-length" not in {k.lower() for k in response.request.headers}
    expect(response, 413, "payload_too_large")
    assert app.state.gateway.requests == []


async def test_chunked_body_is_not_read_past_the_limit(app: FastAPI) -> None:
    """Straight at the ASGI app: the TestClient buffers whole bodies, a server does not."""
    body, content_type = multipart(10 * MAX_REQUEST_BYTES)
    chunk = 4096
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        start = pulled * chunk
        pulled += 1
        if start >= len(body):
            return {"type": "http.disconnect"}
        end = start + chunk
        return {"type": "http.request", "body": body[start:end], "more_body": end < len(body)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/identify",
        "raw_path": b"/identify",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"x-api-key", ADMIN.encode()),
            (b"content-type", content_type.encode()),
            (b"transfer-encoding", b"chunked"),
        ],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
        "state": {},
    }
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 413
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert json.loads(payload)["code"] == "payload_too_large"
    assert pulled * chunk <= MAX_REQUEST_BYTES + 2 * chunk
    assert app.state.gateway.requests == []


def test_streamed_body_under_the_limit_passes(app: FastAPI) -> None:
    body, content_type = multipart(100)
    body = body.replace(b"FAKE:a:1:" + b"0" * 100, b"FAKE:alice:1")

    def chunks() -> Iterator[bytes]:
        yield body[:10]
        yield body[10:]

    response = client(app).post("/identify", content=chunks(), headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text
    assert response.json()["person_id"] == "alice"


def test_lying_content_length_is_not_trusted(app: FastAPI) -> None:
    body, content_type = multipart(2 * MAX_REQUEST_BYTES)
    response = client(app).post(
        "/identify", content=body, headers={"Content-Type": content_type, "Content-Length": "10"}
    )
    assert 400 <= response.status_code < 500
    assert response.json()["code"]
