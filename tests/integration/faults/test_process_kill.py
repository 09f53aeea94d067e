"""kill -9 the enroll worker in the middle of a stream of batches, and the index replica:
after the restart the work completes, nothing lost, every face once in the gallery and the
database; on the log, at most the killed worker's uncommitted batches appear twice."""

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
RESUME_DEADLINE_S = 50.0
REDELIVERY_BOUND = 64  # four micro-batches of FACESTREAM_BATCH_MAX_SIZE (16)


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
    # Counted on the log. The workers are at-least-once: a worker killed inside a batch has
    # produced embeddings whose offsets it never committed, and its replacement produces them
    # again (same face id: the gallery and the projection hold each face once). What must hold:
    # every accepted face is on the log, nothing else is, no face id more than twice, and only
    # what one kill can leave uncommitted (a few micro-batches) is doubled.
    on_log = fault.embeddings_on_the_log()
    assert set(on_log.values) == {face for ids in tally.accepted.values() for face in ids}
    assert set(on_log.duplicated.values()) <= {2}, on_log.duplicated
    assert len(on_log.duplicated) <= REDELIVERY_BOUND, f"{len(on_log.duplicated)} face ids written twice"
    assert not on_log.tombstones
    counts = fault.faces_in_database()
    assert counts == {"faces": ENROLLMENTS, "distinct_faces": ENROLLMENTS, "persons": ENROLLMENTS}
    assert fault.replica_sizes() == {"replica-a": ENROLLMENTS}
    fault.stack.assert_running()
    print(
        f"\n{ENROLLMENTS} enrollments in {elapsed:.0f}s; {events}; retries by cause {tally.retried}; "
        f"{sum(on_log.values.values())} records on the log for {len(on_log.values)} face ids "
        f"({len(on_log.duplicated)} redelivered once)"
    )


def test_restarted_worker_resumes_before_a_default_session_timeout(
    fault: FaultStack, photos: list[bytes]
) -> None:
    """A replacement worker must not wait out the dead member's consumer-group session.

    faust's default `broker_session_timeout` is 60 s: the group keeps the killed member's
    partitions until then, so every enrollment stalls (504) for a minute after a crash. With
    a session timeout of ~10 s the replacement takes over in seconds.
    """
    fault.kill("enroll-worker")
    fault.restart("enroll-worker")
    tally = EnrollTally()
    # The pass condition is a deadline the client polls up to, generous against ~10 s but
    # short of the 60 s a default session timeout would stall for.
    enroll_many(fault, [("resume.check", photos[0])], tally, clients=1, timeout=RESUME_DEADLINE_S)
    assert not tally.failed, (
        f"the restarted enroll worker processed nothing within {RESUME_DEADLINE_S:.0f}s: {tally.failed}"
    )
    assert "resume.check" in tally.accepted
