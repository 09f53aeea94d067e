"""The compose stack for the compose tests: built, brought up once per session, torn down."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.compose.stack import API_KEY, BUILD, COMPOSE, REPO, ComposeStack, run
from tests.integration.pipeline.stack import free_port


def _ready(stack: ComposeStack) -> bool:
    with stack.client() as client:
        response = client.get("/health", timeout=10)
        return response.status_code == 200 and bool(response.json()["ready"])


def _live(stack: ComposeStack) -> bool:
    with stack.client() as client:
        return client.get("/health/live", timeout=5).status_code == 200


@pytest.fixture(scope="session")
def compose_stack() -> Iterator[ComposeStack]:
    """`make docker-build`, then the compose file's CPU services with one replica."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FACESTREAM_")},
        "FACESTREAM_API_KEYS": f"{API_KEY}:admin",
    }
    stack = ComposeStack(env=env, api_port=free_port())
    stack.env.update(FACESTREAM_API_PORT=str(stack.api_port), FACESTREAM_KAFKA_PORT=str(free_port()))
    started = time.monotonic()
    run([str(BUILD)], env=env, timeout=1800)  # cached layers: quick when `make docker-build` ran
    stack.timings["build_s"] = time.monotonic() - started
    try:
        started = time.monotonic()
        stack.compose("up", "-d", "--scale", "replica=1", timeout=900)
        stack.wait_for("the api container's /health/live", lambda: _live(stack), timeout=600)
        stack.timings["up_to_live_s"] = time.monotonic() - started
        stack.wait_for("/health ready", lambda: _ready(stack), timeout=600)
        stack.timings["up_to_ready_s"] = time.monotonic() - started
        yield stack
    finally:
        try:
            log_file = REPO / "var" / "log" / f"compose-{stack.project}.log"
            log_file.parent.mkdir(parents=True, exist_ok=True)
            log_file.write_text(stack.logs(tail=300))
            stack.compose("down", "-v", "--remove-orphans", "--timeout", "20", timeout=600)
        finally:
            subprocess.run([str(COMPOSE), "helpers-down"], env=env, check=False, timeout=60)
        print(f"\ncompose timings: {stack.timings}")


@pytest.fixture(scope="session")
def api(compose_stack: ComposeStack) -> Iterator[httpx.Client]:
    with compose_stack.client() as client:
        yield client
