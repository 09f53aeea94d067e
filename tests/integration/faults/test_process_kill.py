"""kill -9 the enroll worker in the middle of a stream of batches, and the index replica:
after the restart the work completes, nothing lost, nothing duplicated."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from tests.fixtures.services import ServiceEndpoints
from tests.integration.faults.harness import EnrollTally, FaultStack, enroll_many, launch_stack

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.models, pytest.mark.timeout(420)]

ENROLLMENTS = 200
KILL_WORKER_AFTER = 40
KILL_REPLICA_AFTER = 120


@pytest.fixture(scope="module")
def fault(services: ServiceEndpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    with launch_stack(services, tmp_path_factory.mktemp("kill"), name="kill") as running:
        yield running


def _busy_enrolling(fault: FaultStack) -> bool:
    """The worker has logged an enrollment in the last moment: it is inside a batch stream."""
    log = fault.stack.logs / "enroll-worker.log"
    return time.time() - log.stat().st_mtime < 0.5


def test_kill_9_worker_and_replica_mid_stream(fault: FaultStack, photos: list[bytes]) -> None:
    work = [(f"k{n:04d}", photos[n % len(photos)]) for n in range(ENROLLMENTS)]
    tally = EnrollTally()
    events: list[str] = []

    def killer() -> None:
        while len(tally.accepted) < KILL_WORKER_AFTER:
            time.sleep(0.1)
        while not _busy_enrolling(fault):
            time.sleep(0.05)
        fault.kill("enroll-worker")  # SIGKILL: no commit, no goodbye to the group
        events.append(f"worker killed at {len(tally.accepted)} accepted")
        time.sleep(1)
        fault.restart("enroll-worker")
        while len(tally.accepted) < KILL_REPLICA_AFTER:
            time.sleep(0.1)
        fault.kill("replica")
        events.append(f"replica killed at {len(tally.accepted)} accepted")
        time.sleep(1)
        fault.restart("replica")

    thread = threading.Thread(target=killer, daemon=True)
    started = time.monotonic()
    thread.start()
    enroll_many(fault, work, tally, clients=8, timeout=300)
    thread.join(timeout=30)
    elapsed = time.monotonic() - started

    assert len(events) == 2, f"the kills did not both happen: {events}"
    assert not tally.failed, f"gave up on {len(tally.failed)}: {list(tally.failed.items())[:5]}"
    assert len(tally.accepted) == ENROLLMENTS
    assert all(len(ids) == 1 for ids in tally.accepted.values())

    fault.wait_for(
        f"{ENROLLMENTS} faces in the restarted replica",
        lambda: fault.replica_sizes().get("replica-a") == ENROLLMENTS,
        timeout=120,
    )
    fault.wait_for(
        f"{ENROLLMENTS} faces in PostgreSQL",
        lambda: fault.faces_in_database()["faces"] >= ENROLLMENTS,
        timeout=120,
    )
    time.sleep(3)
    counts = fault.faces_in_database()
    assert counts == {"faces": ENROLLMENTS, "distinct_faces": ENROLLMENTS, "persons": ENROLLMENTS}
    assert fault.replica_sizes() == {"replica-a": ENROLLMENTS}
    fault.stack.assert_running()
    print(f"\n{ENROLLMENTS} enrollments in {elapsed:.0f}s; {events}; retries by cause {tally.retried}")


def test_restarted_worker_resumes_within_30s_of_a_kill_9(fault: FaultStack, photos: list[bytes]) -> None:
    """A replacement worker must not wait out the dead member's consumer-group session.

    faust's default `broker_session_timeout` is 60 s: the group keeps the killed member's
    partitions until then, so every enrollment stalls (504) for a minute after a crash. With
    a session timeout of ~10 s the replacement takes over in seconds.
    """
    fault.kill("enroll-worker")
    restarted = time.monotonic()
    fault.restart("enroll-worker")
    tally = EnrollTally()
    enroll_many(fault, [("resume.check", photos[0])], tally, clients=1, timeout=150)
    took = time.monotonic() - restarted
    assert not tally.failed, tally.failed
    assert took < 30, f"the restarted enroll worker took {took:.0f}s to process its first record"
