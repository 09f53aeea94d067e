"""Erasure does not depend on the database: with PostgreSQL stopped, DELETE answers 202 and the
faces leave every replica; the receipt waits for the projection, which deletes the rows when
the database returns."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tests.fixtures.services import ServiceEndpoints
from tests.integration.faults.harness import (
    EnrollTally,
    FaultStack,
    _connect,
    enroll_many,
    identify,
    launch_stack,
    require_local_service,
    service_script,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.models, pytest.mark.timeout(420)]


@pytest.fixture(scope="module")
def fault(services: ServiceEndpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    url = make_url(services.database_url)
    require_local_service("postgres", f"{url.host}:{url.port}", 55432)
    with launch_stack(services, tmp_path_factory.mktemp("erasedb"), name="erasedb") as running:
        yield running


def _receipt(fault: FaultStack, erasure_id: str) -> dict[str, Any]:
    with fault.client() as client:
        response = client.get(f"/erasures/{erasure_id}", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _erase(fault: FaultStack, person: str) -> str:
    with fault.client() as client:
        response = client.delete(f"/persons/{person}", timeout=30)
    assert response.status_code == 202, response.text
    return response.json()["erasure_id"]  # type: ignore[no-any-return]


def _found(fault: FaultStack, photo: bytes) -> str | None:
    response = identify(fault, photo)
    assert response.status_code == 200, response.text
    return response.json()["person_id"]  # type: ignore[no-any-return]


async def _rows(url: str, person: str) -> dict[str, int]:
    conn = await _connect(url)
    try:
        return {
            table: await conn.fetchval(f"SELECT count(*) FROM {table} WHERE person_id = $1", person)
            for table in ("persons", "faces", "enrollments")
        }
    finally:
        await conn.close()


def test_erasure_with_postgresql_stopped(fault: FaultStack, photos: list[bytes]) -> None:
    known, late = ("erase-known", photos[0]), ("erase-late", photos[1])
    tally = EnrollTally()
    enroll_many(fault, [known], tally, clients=1, timeout=120)
    assert not tally.failed, tally.failed
    fault.wait_for(
        "the projection of the person", lambda: asyncio.run(_rows(fault.database_url, known[0]))["faces"]
    )
    assert _found(fault, known[1]) == known[0]

    service_script("postgres", "stop")
    try:
        erased = _erase(fault, known[0])
        fault.wait_for("the person gone from search", lambda: _found(fault, known[1]) != known[0], timeout=30)
        # Enrolled while the database is down and erased at once: gone too.
        enroll_many(fault, [late], tally, clients=1, timeout=120)
        assert not tally.failed, tally.failed
        erased_late = _erase(fault, late[0])
        fault.wait_for(
            "the late person gone from search", lambda: _found(fault, late[1]) != late[0], timeout=30
        )
        for erasure_id in (erased, erased_late):
            receipt = fault.wait_for(
                "the replicas' part of the receipt",
                lambda e=erasure_id: (r := _receipt(fault, e))["waiting_for"] == ["projection"] and r,
                timeout=60,
            )
            assert receipt["status"] == "pending" and receipt["projection_applied"] is False
            assert all(r["applied"] for r in receipt["replicas"]) and receipt["face_ids"]
    finally:
        service_script("postgres", "start")

    for erasure_id in (erased, erased_late):
        fault.wait_for(
            "the receipt done", lambda e=erasure_id: _receipt(fault, e)["status"] == "done", timeout=120
        )
    for person, _ in (known, late):
        assert asyncio.run(_rows(fault.database_url, person)) == {"persons": 0, "faces": 0, "enrollments": 0}
    fault.stack.assert_running()
