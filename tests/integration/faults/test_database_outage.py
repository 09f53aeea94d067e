"""Stop PostgreSQL for a while during enrollments: the API keeps identifying, /health says
degraded meanwhile, and the projection catches up when the database returns."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from tests.fixtures.services import ServiceEndpoints
from tests.integration.faults.harness import (
    EnrollTally,
    FaultStack,
    enroll_many,
    identify,
    launch_stack,
    require_local_service,
    service_script,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.models, pytest.mark.timeout(360)]

BEFORE = 20  # enrolled and projected while the database is up
DURING = 40  # enrolled while it is down


@pytest.fixture(scope="module")
def fault(services: ServiceEndpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    url = make_url(services.database_url)
    require_local_service("postgres", f"{url.host}:{url.port}", 55432)
    with launch_stack(services, tmp_path_factory.mktemp("dbdown"), name="dbdown") as running:
        yield running


def test_database_outage_degrades_but_identifies_then_catches_up(
    fault: FaultStack, photos: list[bytes]
) -> None:
    first = [(f"d{n:04d}", photos[n % len(photos)]) for n in range(BEFORE)]
    later = [(f"d{n:04d}", photos[n % len(photos)]) for n in range(BEFORE, BEFORE + DURING)]
    tally = EnrollTally()
    enroll_many(fault, first, tally, clients=4, timeout=120)
    assert not tally.failed, tally.failed
    fault.wait_for("projection of the first batch", lambda: fault.faces_in_database()["faces"] == BEFORE)
    status, body = fault.health()
    assert (status, body["status"]) == (200, "ready"), body

    service_script("postgres", "stop")
    try:
        status, body = fault.wait_for(
            "/health degraded", lambda: (h := fault.health())[1]["status"] == "degraded" and h, timeout=30
        )
        assert status == 200, body
        assert body["ready"] is True
        assert body["checks"] == {**body["checks"], "database": False, "broker": True, "replicas": True}

        # Identification does not need the database: known faces are still found.
        for person, photo in first[:5]:
            response = identify(fault, photo)
            assert response.status_code == 200, response.text
            assert response.json()["person_id"] == person

        # Enrollment goes on too: the log is the source of truth, the projection waits.
        enroll_many(fault, later, tally, clients=4, timeout=150)
        assert not tally.failed, tally.failed
        fault.wait_for(
            "the replica to hold every face",
            lambda: fault.replica_sizes().get("replica-a") == BEFORE + DURING,
            timeout=60,
        )
        stats = fault.stats()
        assert stats["faces"] is None and stats["gallery_size"] == BEFORE + DURING
        status, body = fault.health()
        assert (status, body["status"], body["checks"]["database"]) == (200, "degraded", False)
        with fault.client() as client:
            down = client.get(f"/persons/{first[0][0]}", timeout=30)
        assert (down.status_code, down.json()["code"]) == (503, "unavailable"), down.text
    finally:
        service_script("postgres", "start")

    fault.wait_for(
        "the projection to catch up",
        lambda: fault.faces_in_database()["faces"] == BEFORE + DURING,
        timeout=90,
    )
    fault.wait_for("/health ready again", lambda: fault.health()[1]["status"] == "ready", timeout=30)
    assert fault.faces_in_database() == {
        "faces": BEFORE + DURING,
        "distinct_faces": BEFORE + DURING,
        "persons": BEFORE + DURING,
    }
    with fault.client() as client:
        person = client.get(f"/persons/{later[-1][0]}", timeout=30)
    assert person.status_code == 200 and person.json()["face_count"] == 1, person.text
    fault.stack.assert_running()
