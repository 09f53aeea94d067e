"""The request middleware: the caller's trace continued into the app and named in the answer;
each request counted by route template, method and status."""

from __future__ import annotations

from types import SimpleNamespace

import structlog
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import generate_latest

from api.observe import Observe
from core import tracing
from core.metrics import Metrics

CALLER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _app() -> FastAPI:
    app = FastAPI()
    app.state.metrics = Metrics.create()
    app.state.gateway = SimpleNamespace(in_flight=3)

    @app.get("/seen/{item}")
    async def seen(item: str) -> dict[str, str | None]:
        # What the route's code (and the gateway publishing for it) reads.
        bound = structlog.contextvars.get_contextvars()
        return {"traceparent": tracing.current.get(), "trace_id": bound.get("trace_id")}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("unhandled")

    app.add_middleware(Observe)
    return app


def _metrics(app: FastAPI) -> str:
    return generate_latest(app.state.metrics.registry).decode()


def test_the_callers_trace_reaches_the_route_and_the_answer() -> None:
    response = TestClient(_app()).get("/seen/x", headers={tracing.HEADER: CALLER})
    inside = response.json()
    assert tracing.trace_id(inside["traceparent"]) == tracing.trace_id(CALLER)
    assert inside["traceparent"] != CALLER  # a span of its own
    assert inside["trace_id"] == tracing.trace_id(CALLER)
    assert response.headers[tracing.HEADER] == inside["traceparent"]


def test_a_request_without_a_trace_starts_one() -> None:
    response = TestClient(_app()).get("/seen/x", headers={tracing.HEADER: "garbage"})
    started = response.headers[tracing.HEADER]
    assert tracing.valid(started)
    assert response.json()["traceparent"] == started


def test_requests_are_counted_by_route_template_and_status() -> None:
    app = _app()
    with TestClient(app, raise_server_exceptions=False) as http:
        http.get("/seen/a")
        http.get("/seen/b")
        http.get("/nowhere")
        assert http.get("/boom").status_code == 500
    text = _metrics(app)
    assert 'facestream_http_requests_total{method="GET",route="/seen/{item}",status="200"} 2.0' in text
    assert 'facestream_http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in text
    assert 'facestream_http_requests_total{method="GET",route="/boom",status="500"} 1.0' in text
    assert 'facestream_http_request_seconds_count{route="/seen/{item}"} 2.0' in text
    assert "facestream_in_flight 3.0" in text
