"""Restart the broker in the middle of 1,000 enrollments: exactly 1,000 faces afterwards,
in the index replica and in PostgreSQL, and exactly one record per face id on the log."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from tests.fixtures.services import ServiceEndpoints
from tests.integration.faults.harness import (
    EnrollTally,
    FaultStack,
    content_hash,
    enroll_many,
    launch_stack,
    require_local_service,
    service_script,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.models, pytest.mark.timeout(420)]

ENROLLMENTS = 1000
RESTART_AFTER = 250  # accepted enrollments before the broker goes down
CLIENTS = 8


@pytest.fixture(scope="module")
def fault(services: ServiceEndpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    require_local_service("kafka", services.kafka_bootstrap, 19092)
    with launch_stack(services, tmp_path_factory.mktemp("broker"), name="broker") as running:
        yield running


def expected_face_id(person: str, photo: bytes) -> str:
    import hashlib

    return hashlib.sha256(f"{person}\x00{content_hash(photo)}".encode()).hexdigest()[:32]


def test_broker_restart_mid_enrollment_loses_and_duplicates_nothing(
    fault: FaultStack, photos: list[bytes]
) -> None:
    work = [(f"p{n:04d}", photos[n % len(photos)]) for n in range(ENROLLMENTS)]
    tally = EnrollTally()
    fault.supervise()  # as `facestream stack run` would: a process that exits is restarted

    marks: dict[str, float] = {}

    def restart_broker() -> None:
        while len(tally.accepted) < RESTART_AFTER:
            time.sleep(0.2)
        marks["down"] = time.monotonic() - started
        service_script("kafka", "restart")
        marks["up"] = time.monotonic() - started
        marks["accepted_while_restarting"] = len(tally.accepted) - RESTART_AFTER

    started = time.monotonic()
    restarter = threading.Thread(target=restart_broker, daemon=True)
    restarter.start()
    enroll_many(fault, work, tally, clients=CLIENTS, timeout=330)
    restarter.join(timeout=60)
    elapsed = time.monotonic() - started

    assert not tally.failed, f"gave up on {len(tally.failed)}: {list(tally.failed.items())[:5]}"
    assert len(tally.accepted) == ENROLLMENTS
    expected = {expected_face_id(person, photo) for person, photo in work}
    seen = {face for ids in tally.accepted.values() for face in ids}
    assert seen == expected

    fault.wait_for(
        f"{ENROLLMENTS} faces in the replica",
        lambda: fault.replica_sizes().get("replica-a") == ENROLLMENTS,
        timeout=120,
    )
    fault.wait_for(
        f"{ENROLLMENTS} faces in PostgreSQL",
        lambda: fault.faces_in_database()["faces"] >= ENROLLMENTS,
        timeout=120,
    )
    # Duplicates are counted where they would be: records per face id on the embeddings log.
    on_log = fault.embeddings_on_the_log()
    assert on_log.duplicated == {}, f"{len(on_log.duplicated)} face ids written more than once"
    assert set(on_log.values) == expected
    assert not on_log.tombstones
    counts = fault.faces_in_database()
    assert counts == {"faces": ENROLLMENTS, "distinct_faces": ENROLLMENTS, "persons": ENROLLMENTS}
    stats = fault.stats()
    assert stats["gallery_size"] == ENROLLMENTS
    assert [r["size"] for r in stats["replicas"]] == [ENROLLMENTS]
    assert stats["faces"] == ENROLLMENTS
    print(
        f"\n{ENROLLMENTS} enrollments in {elapsed:.0f}s (broker restart: {marks}); "
        f"records on the log {sum(on_log.values.values())} for {len(on_log.values)} face ids; "
        f"retries by cause {tally.retried}; "
        f"process restarts {fault.restarts}"
    )
