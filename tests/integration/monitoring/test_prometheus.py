"""A real Prometheus scrapes the local stack (`facestream stack run`, as `make up` starts it) with
the alert rules loaded; every metric the Grafana dashboard and the alerts query exists there."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.fixtures.services import SCRIPTS, ServiceEndpoints
from tests.integration.faults.harness import _scratch_database, small_photos
from tests.integration.pipeline.stack import API_KEY, REPO, free_port

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.models, pytest.mark.timeout(600)]

DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "facestream.json"
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
METRIC = re.compile(r"\bfacestream_[a-z0-9_]+")
SERIES_SUFFIXES = ("_bucket", "_sum", "_count")


def queried_metrics() -> set[str]:
    """Every facestream_* name in the dashboard's and the alert rules' PromQL."""
    import yaml

    exprs: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "expr" and isinstance(value, str):
                    exprs.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(json.loads(DASHBOARD.read_text()))
    walk(yaml.safe_load(ALERTS.read_text()))
    return {name for expr in exprs for name in METRIC.findall(expr)}


def family(name: str) -> str:
    for suffix in SERIES_SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def free_range(size: int) -> int:
    """A first port with `size` free ports from it."""
    for _ in range(50):
        base = free_port()
        if base + size > 65000:
            continue
        if all(socket.socket().connect_ex(("127.0.0.1", base + i)) != 0 for i in range(size)):
            return base
    raise AssertionError("no free port range")


def service(name: str, action: str, env: dict[str, str]) -> None:
    done = subprocess.run(
        [str(SCRIPTS / f"{name}.sh"), action], env=env, cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{name}.sh {action}: {done.stdout[-2000:]}{done.stderr[-2000:]}"


@pytest.fixture(scope="module")
def stack(services: ServiceEndpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`facestream stack run` on its own prefix, database and ports."""
    workdir = tmp_path_factory.mktemp("monitoring")
    db = f"fs_monitoring_{uuid.uuid4().hex[:8]}"
    asyncio.run(_scratch_database(services.database_url, db, drop=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACESTREAM_")}
    env.update(
        FACESTREAM_KAFKA_BOOTSTRAP=services.kafka_bootstrap,
        FACESTREAM_DATABASE_URL=make_url(services.database_url)
        .set(database=db)
        .render_as_string(hide_password=False),
        FACESTREAM_TOPIC_PREFIX=f"mon{uuid.uuid4().hex[:6]}",
        FACESTREAM_API_PORT=str(free_port()),
        FACESTREAM_METRICS_PORT=str(free_range(8)),
        FACESTREAM_API_KEYS=f"{API_KEY}:admin",
        FACESTREAM_MODELS_DIR=str(REPO / "var" / "models"),
        FACESTREAM_INDEX_DIR=str(workdir / "index"),
        FACESTREAM_STATUS_INTERVAL_S="1",
        FACESTREAM_PROMETHEUS_PORT=str(free_port()),
        FACESTREAM_VAR=str(workdir / "var"),
        PYTHONUNBUFFERED="1",
    )
    log = (workdir / "stack.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "stack", "run"], env=env, cwd=REPO, stdout=log, stderr=log
    )
    env["targets"] = str(REPO / "var" / "prometheus" / f"targets-{env['FACESTREAM_API_PORT']}.json")
    env["FACESTREAM_PROMETHEUS_TARGETS"] = env["targets"]
    try:
        service("prometheus", "start", env)
        yield env
    finally:
        service("prometheus", "stop", env)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        asyncio.run(_scratch_database(services.database_url, db, drop=True))


def api(env: dict[str, str]) -> httpx.Client:
    return httpx.Client(
        base_url=f"http://127.0.0.1:{env['FACESTREAM_API_PORT']}", headers={"X-API-Key": API_KEY}, timeout=60
    )


def prometheus(env: dict[str, str], path: str, **params: str) -> object:
    url = f"http://127.0.0.1:{env['FACESTREAM_PROMETHEUS_PORT']}/api/v1/{path}"
    body = httpx.get(url, params=params, timeout=10).json()
    assert body["status"] == "success", body
    return body["data"]


def poll(what: str, predicate: object, timeout: float = 180.0) -> object:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = predicate()  # type: ignore[operator]
            if last:
                return last
        except (httpx.HTTPError, KeyError) as exc:
            last = exc
        time.sleep(1.0)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def test_alert_rules_and_config_pass_promtool(stack: dict[str, str]) -> None:
    service("prometheus", "check", stack)
    groups = prometheus(stack, "rules")["groups"]  # type: ignore[index]
    names = {rule["name"] for group in groups for rule in group["rules"]}
    assert "FacestreamReplicaLagging" in names and len(names) >= 9, names


def test_every_process_is_scraped(stack: dict[str, str]) -> None:
    poll("/health ready", lambda: api(stack).get("/health").json()["ready"])
    expected = {group["labels"]["service"] for group in json.loads(Path(stack["targets"]).read_text())}
    assert {"api", "enroll-worker", "identify-worker", "projector", "replica-1"} <= expected

    def up() -> set[str]:
        active = prometheus(stack, "targets")["activeTargets"]  # type: ignore[index]
        return {t["labels"]["service"] for t in active if t["health"] == "up"}

    poll(f"every process up in Prometheus ({expected})", lambda: up() == expected)


def test_every_metric_the_dashboard_and_alerts_query_exists(stack: dict[str, str]) -> None:
    photo = small_photos()[0]
    with api(stack) as client:
        poll("/health ready", lambda: client.get("/health").json()["ready"])
        assert client.post("/enroll/mon.one", files=[("images", ("a.jpg", photo))]).status_code == 201
        assert client.post("/identify", files={"image": ("b.jpg", photo)}).status_code == 200
        client.post("/identify", files={"image": ("c.jpg", b"not an image")})
    wanted = queried_metrics()
    assert {"facestream_replica_lag", "facestream_index_size", "facestream_consumer_lag"} <= wanted

    def missing() -> set[str]:
        metadata = prometheus(stack, "metadata")
        known = set(metadata)  # type: ignore[arg-type]
        return {name for name in wanted if family(name) not in known and name not in known}

    poll("every queried metric scraped", lambda: not missing(), timeout=120)
    # The two the API's /metrics alone never had: they come from the replicas' own endpoints.
    for name in ("facestream_replica_lag", "facestream_index_size"):
        series = prometheus(stack, "series", **{"match[]": name})
        assert series, f"no {name} series in Prometheus"
