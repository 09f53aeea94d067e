"""The stack's processes for integration tests: each a real `facestream` process, killable."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[3]

STAFF_KEY = "itest-staff-key"
API_KEY = "itest-admin-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    env: dict[str, str]
    logs: Path
    api_url: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def cli(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode:
            raise RuntimeError(f"facestream {' '.join(args)} failed:\n{done.stderr[-3000:]}")
        return done.stdout

    def start(self, name: str, *args: str, **env: str) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "cli.main", *args],
            env={**self.env, **env},
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(name)
        process.send_signal(sig)
        process.wait(timeout=30)

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()

    def assert_running(self) -> None:
        dead = {n: p.returncode for n, p in self.processes.items() if p.poll() is not None}
        if dead:
            raise AssertionError(f"stack processes exited: {dead}; logs in {self.logs}")

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.api_url, headers={"X-API-Key": API_KEY}, timeout=60)

    def wait_for(self, what: str, predicate: Any, timeout: float = 120.0) -> Any:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            self.assert_running()
            try:
                last = predicate()
                if last:
                    return last
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}; last: {last!r}; logs in {self.logs}")

    def replicas(self) -> list[dict[str, Any]]:
        with self.client() as client:
            return client.get("/stats").json()["replicas"]  # type: ignore[no-any-return]


def stack_env(*, kafka: str, database_url: str, prefix: str, workdir: Path, api_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACESTREAM_")}
    env.update(
        FACESTREAM_KAFKA_BOOTSTRAP=kafka,
        FACESTREAM_DATABASE_URL=database_url,
        FACESTREAM_TOPIC_PREFIX=prefix,
        FACESTREAM_API_PORT=str(api_port),
        # The gallery tests' scoped key: an admin of the `staff` gallery only.
        FACESTREAM_API_KEYS=f"{API_KEY}:admin,{STAFF_KEY}:admin@staff",
        FACESTREAM_MODELS_DIR=str(REPO / "var" / "models"),
        FACESTREAM_INDEX_DIR=str(workdir / "index"),
        FACESTREAM_SNAPSHOT_INTERVAL_S="2",
        FACESTREAM_STATUS_INTERVAL_S="1",
        FACESTREAM_REPLY_TIMEOUT_S="60",
        FACESTREAM_LOG_LEVEL="INFO",
        FACESTREAM_RETAIN_IMAGES="true",
        FACESTREAM_IMAGE_ENCRYPTION_KEY=base64.b64encode(os.urandom(32)).decode(),
        PYTHONUNBUFFERED="1",
    )
    return env
