"""kill -9 of the identify worker under load: how soon answers resume after its restart.

Runs a private stack twice on the real broker and database (FACESTREAM_KAFKA_BOOTSTRAP and
FACESTREAM_DATABASE_URL, as `make test` uses them): with static group membership (KIP-345,
the default) and without it (the baseline, measured in the same run). Two clients identify
continuously; the worker is killed, restarted after a second, and we report the gap between
its restart and the first answer, and between "worker_starting" in its log (models loaded,
joining the group) and that answer.

    .venv/bin/python -m bench.worker_restart
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx

from tests.fixtures.services import ServiceEndpoints
from tests.integration.pipeline.conftest import faces_dir, running_stack, scratch_database
from tests.integration.pipeline.stack import API_KEY, Stack


def _load(stack: Stack, photo: bytes, stop: threading.Event, done: list[tuple[float, int]]) -> None:
    with httpx.Client(base_url=stack.api_url, headers={"X-API-Key": API_KEY}, timeout=60) as client:
        while not stop.is_set():
            try:
                status = client.post("/identify", files={"image": ("p.jpg", photo)}).status_code
            except httpx.HTTPError:
                status = 0
            done.append((time.time(), status))


def _worker_started_at(log: Path, after: float) -> float | None:
    for line in log.read_text(errors="replace").splitlines():
        if '"worker_starting"' in line:
            stamp = re.search(r'"timestamp": "([^"]+)"', line)
            if stamp:
                at = datetime.fromisoformat(stamp.group(1).replace("Z", "+00:00")).timestamp()
                if at > after:
                    return at
    return None


def measure(services: ServiceEndpoints, *, static: bool, photo: bytes, enroll: list[Path]) -> dict:
    with (
        scratch_database(services) as url,
        running_stack(
            services,
            url,
            Path(tempfile.mkdtemp(prefix="restart-")),
            replicas={"replica": {"FACESTREAM_REPLICA_ID": "replica-a"}},
            FACESTREAM_STATIC_MEMBERSHIP=str(static).lower(),
        ) as stack,
    ):
        with stack.client() as client:
            files = [("images", (p.name, p.read_bytes())) for p in enroll]
            assert client.post("/enroll/bench.person", files=files).status_code == 201
        stop, done = threading.Event(), []  # type: ignore[var-annotated]
        clients = [threading.Thread(target=_load, args=(stack, photo, stop, done)) for _ in range(2)]
        for thread in clients:
            thread.start()
        time.sleep(8)
        stack.kill("identify-worker", sig=signal.SIGKILL)
        time.sleep(1.0)
        restarted = time.time()
        stack.start("identify-worker", "worker", "identify")
        time.sleep(40)
        stop.set()
        for thread in clients:
            thread.join(timeout=90)
        first = min((t for t, status in done if status == 200 and t > restarted), default=None)
        started = _worker_started_at(stack.logs / "identify-worker.log", restarted)
        return {
            "static_membership": static,
            "answers": sum(1 for _, s in done if s == 200),
            "errors": sum(1 for _, s in done if s != 200),
            "resume_after_restart_s": None if first is None else round(first - restarted, 2),
            "worker_startup_s": None if started is None else round(started - restarted, 2),
            "resume_after_worker_started_s": None
            if first is None or started is None
            else round(first - started, 2),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    services = ServiceEndpoints(
        kafka_bootstrap=os.environ["FACESTREAM_KAFKA_BOOTSTRAP"],
        database_url=os.environ["FACESTREAM_DATABASE_URL"],
    )
    person = sorted((faces_dir() / "people").iterdir())[0]
    photos = sorted(person.iterdir())
    runs = [
        measure(services, static=s, photo=photos[0].read_bytes(), enroll=photos[1:]) for s in (True, False)
    ]
    print(json.dumps({"runs": runs}, indent=2))


if __name__ == "__main__":
    main()
