"""The local stack as child processes of one supervisor: what `make run` and `make up` start."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import httpx

from cli.metrics_targets import assign_ports, file_sd, write_targets
from core.logging import get_logger
from core.settings import Settings
from core.topics import ensure_topics, topic_specs

log = get_logger("stack")

DEV_KEY_FILE = Path("var/dev-api-key")
STOP_GRACE_S = 20.0
MAX_BACKOFF_S = 30.0
STABLE_AFTER_S = 60.0


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    backoff_s: float = 1.0
    started_at: float = 0.0

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv, env=self.env)
        self.started_at = time.monotonic()
        log.info("process_started", process=self.name, pid=self.process.pid)

    def next_backoff(self) -> float:
        """How long to wait before restarting: doubling while it keeps crashing, back to the
        start once it had run STABLE_AFTER_S (one crash a day must not wait 30 s)."""
        if time.monotonic() - self.started_at >= STABLE_AFTER_S:
            self.backoff_s = 1.0
        wait = self.backoff_s
        self.backoff_s = min(self.backoff_s * 2, MAX_BACKOFF_S)
        return wait


def dev_api_keys(settings: Settings) -> str:
    """The configured keys, or a development admin key kept under var/ and printed once."""
    configured = settings.api_keys.get_secret_value()
    if configured:
        return configured
    if not DEV_KEY_FILE.exists():
        DEV_KEY_FILE.parent.mkdir(parents=True, exist_ok=True)
        DEV_KEY_FILE.write_text(secrets.token_urlsafe(24) + "\n")
        DEV_KEY_FILE.chmod(0o600)
    key = DEV_KEY_FILE.read_text().strip()
    click.echo(f"development API key (role admin): {key}  (X-API-Key header; in {DEV_KEY_FILE})")
    return f"{key}:admin"


def children(settings: Settings, *, replicas: int) -> list[Child]:
    base = {**os.environ, "FACESTREAM_API_KEYS": dev_api_keys(settings)}
    cli = [sys.executable, "-m", "cli.main"]
    procs = [
        Child("api", [*cli, "api"], base),
        Child("enroll-worker", [*cli, "worker", "enroll"], base),
        Child("identify-worker", [*cli, "worker", "identify"], base),
        Child("projector", [*cli, "projector"], base),
        Child("eraser", [*cli, "eraser"], base),
    ]
    procs += [
        Child(f"replica-{n}", [*cli, "replica"], {**base, "FACESTREAM_REPLICA_ID": f"replica-{n}"})
        for n in range(1, replicas + 1)
    ]
    # Every process's metrics reach Prometheus: a port each (cli/metrics_targets.py).
    ports = assign_ports([child.name for child in procs], settings.metrics_port)
    for child in procs:
        child.env = {**child.env, "FACESTREAM_METRICS_PORT": str(ports[child.name])}
    return procs


def publish_metrics_targets(settings: Settings, procs: list[Child]) -> Path:
    ports = {child.name: int(child.env["FACESTREAM_METRICS_PORT"]) for child in procs}
    path = write_targets(
        file_sd(ports, api_host=settings.api_host, api_port=settings.api_port), settings.api_port
    )
    log.info("metrics_targets", path=str(path), ports=ports)
    return path


def prepare(settings: Settings) -> None:
    """Schema and topics exist before any process needs them."""
    from db.migrate import upgrade

    upgrade(settings.database_url)
    asyncio.run(ensure_topics(settings, topic_specs(settings)))


def run_foreground(settings: Settings, *, replicas: int) -> int:
    prepare(settings)
    procs = children(settings, replicas=replicas)
    targets = publish_metrics_targets(settings, procs)
    stopping = False

    def request_stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    for child in procs:
        child.start()
    while not stopping:
        for child in procs:
            if child.process and child.process.poll() is not None and not stopping:
                # A crashed worker restarts and resumes from its committed offsets.
                log.error("process_exited", process=child.name, code=child.process.returncode)
                time.sleep(child.next_backoff())
                child.start()
        time.sleep(0.5)
    _stop_all(procs)
    targets.unlink(missing_ok=True)
    return 0


def _stop_all(procs: list[Child]) -> None:
    for child in procs:
        if child.process and child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for child in procs:
        if child.process is None:
            continue
        try:
            child.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            log.warning("process_killed", process=child.name)
            child.process.kill()
            child.process.wait()
        log.info("process_stopped", process=child.name, code=child.process.returncode)


def wait_ready(settings: Settings, *, timeout_s: float) -> dict[str, Any]:
    url = f"http://{settings.api_host}:{settings.api_port}/health"
    deadline = time.monotonic() + timeout_s
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=3.0)
            last = response.json()
            if response.status_code == 200 and last.get("ready"):
                return last
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(1.0)
    raise SystemExit(f"not ready after {timeout_s:.0f}s: {last or 'no answer from ' + url}")
