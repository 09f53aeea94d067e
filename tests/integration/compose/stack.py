"""docker-compose.yml brought up for real (scripts/containers/compose.sh), one project per session."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[3]
COMPOSE = REPO / "scripts" / "containers" / "compose.sh"
BUILD = REPO / "scripts" / "containers" / "build.sh"
API_KEY = "compose-admin-key"


def run(argv: list[str], *, env: dict[str, str] | None = None, timeout: float = 900) -> str:
    done = subprocess.run(
        argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if done.returncode:
        raise AssertionError(
            f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    return done.stdout


@dataclass
class ComposeStack:
    """One compose project: its name, its environment, its API on a loopback port."""

    env: dict[str, str]
    api_port: int
    project: str = field(default_factory=lambda: f"fsci{uuid.uuid4().hex[:6]}")
    timings: dict[str, float] = field(default_factory=dict)

    def compose(self, *args: str, timeout: float = 900) -> str:
        return run([str(COMPOSE), "-p", self.project, *args], env=self.env, timeout=timeout)

    def engine(self, *args: str, timeout: float = 120) -> str:
        engine = run([str(COMPOSE), "engine"], env=self.env).strip()
        return run([engine, *args], env=self.env, timeout=timeout)

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"http://127.0.0.1:{self.api_port}", headers={"X-API-Key": API_KEY}, timeout=60
        )

    def logs(self, tail: int = 40) -> str:
        try:
            return self.compose("logs", "--no-color", "--tail", str(tail), timeout=120)
        except AssertionError as exc:
            return str(exc)

    def wait_for(self, what: str, predicate: Callable[[], Any], timeout: float = 300.0) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = predicate()
                if last:
                    return last
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(1.0)
        raise AssertionError(f"timed out waiting for {what}; last: {last!r}\n{self.logs()}")

    def stats(self) -> dict[str, Any]:
        with self.client() as client:
            return client.get("/stats", timeout=10).json()  # type: ignore[no-any-return]

    def ready_replicas(self) -> dict[str, int]:
        return {r["replica_id"]: r["size"] for r in self.stats()["replicas"] if r["ready"]}
