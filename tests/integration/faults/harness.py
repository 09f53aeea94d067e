"""A private stack per fault-test module, plus the clients and counters the fault tests share.

Fault tests kill the broker, the database and the stack's own processes, so each module gets
its own stack on its own topic prefix and scratch database (never the session-wide one of
tests/integration/pipeline). An optional supervisor thread restarts processes that exit, as
`facestream stack run` does in production; it records every restart it made.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import io
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest
from PIL import Image
from sqlalchemy.engine import make_url

from tests.fixtures.services import SCRIPTS, ServiceEndpoints
from tests.integration.faults.log_records import LogCount, count_records
from tests.integration.pipeline.stack import REPO, Stack, free_port, stack_env

FACES_DIR = Path(os.environ.get("FACESTREAM_FACES_DIR", REPO.parent / "shared" / "faces"))

# How a real client treats the API's answers: these are worth retrying, nothing else is.
RETRYABLE_STATUS = {429, 502, 503, 504}


# --- the stack ------------------------------------------------------------------------------


@dataclass
class FaultStack:
    """A `Stack` with its scratch database URL and an optional supervisor."""

    stack: Stack
    database_url: str
    restarts: list[str] = field(default_factory=list)
    _argv: dict[str, tuple[tuple[str, ...], dict[str, str]]] = field(default_factory=dict)
    _supervising: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def prefix(self) -> str:
        return self.stack.env["FACESTREAM_TOPIC_PREFIX"]

    @property
    def kafka(self) -> str:
        return self.stack.env["FACESTREAM_KAFKA_BOOTSTRAP"]

    @property
    def embeddings_topic(self) -> str:
        return f"{self.prefix}.face.embeddings.v1"

    def embeddings_on_the_log(self) -> LogCount:
        """Records per face id on the embeddings topic itself (duplicates would show here)."""
        return count_records(self.kafka, self.embeddings_topic)

    def start(self, name: str, *args: str, **env: str) -> None:
        with self._lock:
            self._argv[name] = (args, env)
            self.stack.start(name, *args, **env)

    def kill(self, name: str, sig: int = 9) -> None:
        with self._lock:
            self.stack.kill(name, sig)

    def restart(self, name: str) -> None:
        args, env = self._argv[name]
        self.start(name, *args, **env)

    def supervise(self, on: bool = True) -> None:
        if on:
            self._supervising.set()
        else:
            self._supervising.clear()

    def _supervisor(self, stop: threading.Event) -> None:
        while not stop.wait(0.5):
            if not self._supervising.is_set():
                continue
            with self._lock:
                dead = {n: p.returncode for n, p in self.stack.processes.items() if p.poll() is not None}
                for name in dead:
                    self.stack.processes.pop(name)
            for name, code in dead.items():
                self.restarts.append(f"{name} (exit {code})")
                time.sleep(1.0)
                self.restart(name)

    def client(self, key: str | None = None) -> httpx.Client:
        client = self.stack.client()
        if key is not None:
            client.headers["X-API-Key"] = key
        return client

    def wait_for(self, what: str, predicate: Callable[[], object], timeout: float = 120.0) -> object:
        """Like Stack.wait_for, tolerant of a process the supervisor is restarting."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if not self._supervising.is_set():
                self.stack.assert_running()
            try:
                last = predicate()
                if last:
                    return last
            except (httpx.HTTPError, OSError, asyncpg.PostgresError) as exc:
                last = exc
            time.sleep(0.5)
        raise AssertionError(
            f"timed out waiting for {what}; last: {last!r}; restarts: {self.restarts}; "
            f"logs in {self.stack.logs}"
        )

    # --- what the tests count

    def stats(self) -> dict:
        with self.client() as client:
            return client.get("/stats", timeout=10).json()  # type: ignore[no-any-return]

    def replica_sizes(self) -> dict[str, int]:
        return {r["replica_id"]: r["size"] for r in self.stats()["replicas"] if r["ready"]}

    def health(self) -> tuple[int, dict]:
        with self.client() as client:
            response = client.get("/health", timeout=10)
        return response.status_code, response.json()

    def faces_in_database(self) -> dict[str, int]:
        return asyncio.run(_face_counts(self.database_url))


async def _connect(url: str) -> asyncpg.Connection:
    parsed = make_url(url)
    return await asyncpg.connect(
        host=parsed.host,
        port=parsed.port,
        user=parsed.username,
        password=parsed.password,
        database=parsed.database,
        timeout=5,
    )


async def _face_counts(url: str) -> dict[str, int]:
    conn = await _connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS faces, count(DISTINCT face_id) AS distinct_faces,"
            " count(DISTINCT person_id) AS persons FROM faces"
        )
        return dict(row)
    finally:
        await conn.close()


async def _scratch_database(url: str, name: str, *, drop: bool) -> None:
    conn = await _connect(url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def _ready(stack: Stack) -> bool:
    with stack.client() as client:
        response = client.get("/health", timeout=10)
        return response.status_code == 200 and bool(response.json()["ready"])


@contextmanager
def launch_stack(
    services: ServiceEndpoints,
    workdir: Path,
    *,
    name: str,
    api_keys: str | None = None,
    extra_replicas: int = 0,
    **env: str,
) -> Iterator[FaultStack]:
    """API, both faust workers, projector and one replica (process `replica`, id replica-a)
    on a fresh prefix and database; `extra_replicas` more as replica-b, replica-c, ..."""
    db_name = f"fs_fault_{name}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_scratch_database(services.database_url, db_name, drop=False))
    database_url = make_url(services.database_url).set(database=db_name).render_as_string(hide_password=False)
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    port = free_port()
    base = stack_env(
        kafka=services.kafka_bootstrap,
        database_url=database_url,
        prefix=f"fault{name}{uuid.uuid4().hex[:6]}",
        workdir=workdir,
        api_port=port,
    )
    base.update(FACESTREAM_REPLY_TIMEOUT_S="20", **{f"FACESTREAM_{k.upper()}": v for k, v in env.items()})
    if api_keys is not None:
        base["FACESTREAM_API_KEYS"] = api_keys
    stack = Stack(env=base, logs=workdir / "logs", api_url=f"http://127.0.0.1:{port}")
    running = FaultStack(stack=stack, database_url=database_url)
    stop = threading.Event()
    supervisor = threading.Thread(target=running._supervisor, args=(stop,), daemon=True)
    try:
        stack.cli("db", "migrate")
        stack.cli("topics", "create")
        running.start("replica", "replica", FACESTREAM_REPLICA_ID="replica-a")
        for n in range(extra_replicas):
            replica_id = f"replica-{chr(ord('b') + n)}"
            running.start(replica_id, "replica", FACESTREAM_REPLICA_ID=replica_id)
        running.start("projector", "projector")
        running.start("eraser", "eraser")
        running.start("enroll-worker", "worker", "enroll")
        running.start("identify-worker", "worker", "identify")
        running.start("api", "api")
        supervisor.start()
        stack.wait_for("/health ready", lambda: _ready(stack), timeout=180)
        yield running
    finally:
        stop.set()
        if supervisor.is_alive():
            supervisor.join(timeout=5)
        stack.stop_all()
        # The database may be what a test stopped; a stray scratch database is harmless.
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            asyncio.run(_scratch_database(services.database_url, db_name, drop=True))


# --- the local services ----------------------------------------------------------------------


def require_local_service(service: str, address: str, default_port: int) -> None:
    """Fail unless `address` is the local process that scripts/services/<service>.sh controls.

    A fault test that cannot restart its services has not tested anything: it fails (with what
    to set) rather than skip. Point FACESTREAM_KAFKA_PORT / FACESTREAM_PG_PORT and the
    endpoints at instances of your own to run it where the shared ones must not be touched.
    """
    host, _, port = address.rpartition(":")
    local_port = int(
        os.environ.get(f"FACESTREAM_{'KAFKA' if service == 'kafka' else 'PG'}_PORT", default_port)
    )
    if host not in ("127.0.0.1", "localhost") or int(port) != local_port:
        pytest.fail(
            f"{service} in use is {address}, not the local process that "
            f"scripts/services/{service}.sh controls (127.0.0.1:{local_port}): cannot restart it",
            pytrace=False,
        )
    if subprocess.run([str(SCRIPTS / f"{service}.sh"), "status"], capture_output=True).returncode:
        pytest.fail(f"{service} on {address} is not managed by scripts/services/{service}.sh", pytrace=False)


def service_script(service: str, action: str, timeout: float = 180) -> None:
    done = subprocess.run(
        [str(SCRIPTS / f"{service}.sh"), action],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode:
        raise AssertionError(f"{service}.sh {action} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")


# --- photos and clients -----------------------------------------------------------------------


def small_photos(max_side: int = 320) -> list[bytes]:
    """Every sample photo of a single person, downscaled and re-encoded: quick to decode."""
    photos = []
    with (FACES_DIR / "manifest.csv").open() as fh:
        for row in csv.DictReader(fh):
            image = Image.open(FACES_DIR / row["path"]).convert("RGB")
            image.thumbnail((max_side, max_side))
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=90)
            photos.append(buffer.getvalue())
    return photos


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class EnrollTally:
    """What the clients saw: per person, the face ids accepted, and every retryable failure."""

    accepted: dict[str, list[str]] = field(default_factory=dict)
    retried: dict[str, int] = field(default_factory=dict)  # status or exception name -> count
    failed: dict[str, str] = field(default_factory=dict)  # person -> last answer, gave up
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, what: str) -> None:
        with self.lock:
            self.retried[what] = self.retried.get(what, 0) + 1


def enroll_with_retry(
    fault: FaultStack, person: str, photo: bytes, tally: EnrollTally, *, deadline: float
) -> None:
    """One enrollment as a patient client does it: retry 429/5xx and connection errors."""
    delay = 0.5
    last = ""
    with fault.client() as client:
        while time.monotonic() < deadline:
            try:
                # No answer counts after the deadline: a request never outlives it.
                response = client.post(
                    f"/enroll/{person}",
                    files=[("images", (f"{person}.jpg", photo))],
                    timeout=max(1.0, min(40.0, deadline - time.monotonic())),
                )
            except httpx.HTTPError as exc:
                tally.count(type(exc).__name__)
                last = repr(exc)
            else:
                if response.status_code == 201:
                    ids = [a["face_id"] for a in response.json()["accepted"]]
                    with tally.lock:
                        tally.accepted[person] = ids
                    return
                last = f"{response.status_code} {response.text[:200]}"
                if response.status_code not in RETRYABLE_STATUS:
                    break
                tally.count(str(response.status_code))
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
    with tally.lock:
        tally.failed[person] = last


def enroll_many(
    fault: FaultStack,
    work: list[tuple[str, bytes]],
    tally: EnrollTally,
    *,
    clients: int = 4,
    timeout: float = 300.0,
) -> None:
    deadline = time.monotonic() + timeout
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(lambda item: enroll_with_retry(fault, *item, tally, deadline=deadline), work))


def identify(fault: FaultStack, photo: bytes, *, key: str | None = None) -> httpx.Response:
    with fault.client(key) as client:
        return client.post("/identify", files={"image": ("probe.jpg", photo)}, timeout=40)
