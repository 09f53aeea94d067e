"""A whole stack (API, faust workers, projector, index replica) on the real broker and database,
isolated by its own topic prefix and its own scratch database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.fixtures.services import ServiceEndpoints
from tests.integration.pipeline.stack import Stack, free_port, stack_env

FACES_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "faces"


def faces_dir() -> Path:
    import os

    return Path(os.environ.get("FACESTREAM_FACES_DIR", FACES_DIR))


async def _scratch_database(url: str, name: str, *, drop: bool) -> None:
    parsed = make_url(url)
    conn = await asyncpg.connect(
        host=parsed.host,
        port=parsed.port,
        user=parsed.username,
        password=parsed.password,
        database=parsed.database,
    )
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@contextmanager
def scratch_database(services: ServiceEndpoints) -> Iterator[str]:
    """A database of its own on the real server, dropped afterwards."""
    name = f"fs_itest_{uuid.uuid4().hex[:10]}"
    asyncio.run(_scratch_database(services.database_url, name, drop=False))
    try:
        yield make_url(services.database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_scratch_database(services.database_url, name, drop=True))


@contextmanager
def running_stack(
    services: ServiceEndpoints,
    database_url: str,
    workdir: Path,
    *,
    replicas: dict[str, dict[str, str]],
    **extra_env: str,
) -> Iterator[Stack]:
    """API, both faust workers, the projector and the given replicas (name -> extra env)."""
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = stack_env(
        kafka=services.kafka_bootstrap,
        database_url=database_url,
        prefix=f"itest{uuid.uuid4().hex[:8]}",
        workdir=workdir,
        api_port=port,
    )
    env.update(extra_env)
    stack = Stack(env=env, logs=workdir / "logs", api_url=f"http://127.0.0.1:{port}")
    stack.cli("db", "migrate")
    stack.cli("topics", "create")
    try:
        for name, extra in replicas.items():
            stack.start(name, "replica", **extra)
        stack.start("projector", "projector")
        stack.start("eraser", "eraser")
        stack.start("enroll-worker", "worker", "enroll")
        stack.start("identify-worker", "worker", "identify")
        stack.start("api", "api")
        stack.wait_for("/health ready", lambda: _ready(stack), timeout=180)
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture(scope="session")
def scratch_database_url(services: ServiceEndpoints) -> Iterator[str]:
    with scratch_database(services) as url:
        yield url


@pytest.fixture(scope="session")
def stack(
    services: ServiceEndpoints, scratch_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("stack")
    replicas = {"replica": {"FACESTREAM_REPLICA_ID": "replica-a"}}
    with running_stack(services, scratch_database_url, workdir, replicas=replicas) as running:
        yield running


def _ready(stack: Stack) -> bool:
    with stack.client() as client:
        response = client.get("/health")
        return response.status_code == 200 and bool(response.json()["ready"])
