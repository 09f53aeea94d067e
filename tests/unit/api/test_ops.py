"""/health, /stats, /metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fastapi import FastAPI

from api.routes import ops
from tests.unit.api.factories import VIEWER, FakeGateway, FakeReplicas, client, make_app, replica_status


def test_metrics_is_prometheus_text(app: FastAPI) -> None:
    client(app).get("/nope")
    response = client(app, key=None).get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE facestream_http_requests_total counter" in response.text
    assert 'facestream_http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in response.text


def test_openapi_lists_the_paths(app: FastAPI) -> None:
    response = client(app, key=None).get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/enroll/{person_id}",
        "/identify",
        "/persons/{person_id}",
        "/persons",
        "/health",
        "/stats",
        "/metrics",
    ):
        assert path in paths
    assert "post" in paths["/identify"] and "post" in paths["/enroll/{person_id}"]


def test_health_ready(app: FastAPI) -> None:
    response = client(app, key=None).get("/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready" and body["ready"] is True
    assert body["checks"] == {"broker": True, "database": True, "replicas": True}


def test_health_without_replicas_is_503(tmp_path: Path) -> None:
    app = make_app(tmp_path, replicas=FakeReplicas(replica_status(ready=False)))
    response = client(app, key=None).get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["checks"]["replicas"] is False
    assert body["detail"]["replicas"] == "0 ready of 1 live"


def test_health_without_the_broker_is_503(tmp_path: Path) -> None:
    gateway = FakeGateway()
    gateway.broker_up = False
    response = client(make_app(tmp_path, gateway=gateway), key=None).get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["checks"]["broker"] is False


def test_health_asks_the_database_and_the_broker_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each check waits (up to 2 s) for the other to have started: asked one after the other,
    the first would give up and report its part down."""
    started = {"database": asyncio.Event(), "broker": asyncio.Event()}

    async def meet(me: str, other: str) -> bool:
        started[me].set()
        try:
            await asyncio.wait_for(started[other].wait(), timeout=2.0)
        except TimeoutError:
            return False
        return True

    async def ping(engine: object, *, timeout_s: float) -> bool:
        return await meet("database", "broker")

    gateway = FakeGateway()
    gateway.broker_reachable = lambda: meet("broker", "database")  # type: ignore[method-assign]
    monkeypatch.setattr(ops, "ping", ping)
    response = client(make_app(tmp_path, gateway=gateway), key=None).get("/health")
    assert response.json()["checks"] == {"broker": True, "database": True, "replicas": True}


def test_health_live(app: FastAPI) -> None:
    assert client(app, key=None).get("/health/live").json() == {"live": True}


def test_stats(app: FastAPI) -> None:
    app.state.replicas = FakeReplicas(replica_status("r1", size=7), replica_status("r2", ready=False, size=3))
    response = client(app, key=VIEWER).get("/stats")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["gallery_size"] == 7
    assert body["persons"] == 0 and body["faces"] == 0
    assert [r["replica_id"] for r in body["replicas"]] == ["r1", "r2"]
    assert body["threshold"] == 0.5
    assert body["model"] == "fake/fake@1"
