"""The typed Python client, sync and async, against the live stack."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from facestream_client import (
    AsyncFacestreamClient,
    EnrollResult,
    FacestreamClient,
    FacestreamError,
    IdentifyResult,
    Person,
)

from tests.integration.pipeline.stack import API_KEY, Stack

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.models]

T = TypeVar("T")


def photos(faces: Path, person: str) -> list[Path]:
    return sorted(p for p in (faces / "people" / person).iterdir() if p.suffix.lower() in {".jpg", ".png"})


def eventually(what: str, probe: Callable[[], T | None], timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = probe()
            if last:
                return last  # type: ignore[return-value]
        except FacestreamError as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


@pytest.fixture
def client(stack: Stack) -> FacestreamClient:
    with FacestreamClient(stack.api_url, api_key=API_KEY) as fs:
        yield fs  # type: ignore[misc]


def test_health_and_stats_are_typed(client: FacestreamClient) -> None:
    health = client.health()
    assert health.ready and health.live and health.checks["broker"]
    stats = client.stats()
    assert stats.replicas and stats.replicas[0].ready
    assert -1.0 <= stats.threshold <= 1.0 and stats.model


def test_sync_round_trip_enroll_identify_read_erase(client: FacestreamClient, faces: Path) -> None:
    person_id = f"py.sync.{uuid.uuid4().hex[:8]}"
    pictures = photos(faces, "angelina_jolie")
    enrolled = client.enroll(person_id, pictures[:-1])
    assert isinstance(enrolled, EnrollResult) and enrolled.person_id == person_id
    assert len(enrolled.accepted) >= 3, enrolled.rejected
    assert all(len(a.face_id) == 32 and a.bbox.width > 0 for a in enrolled.accepted)

    def matched() -> IdentifyResult | None:
        result = client.identify(pictures[-1], top_k=3)
        return result if result.person_id == person_id else None

    match = eventually("identification", matched)
    assert not match.unknown and match.similarity is not None and match.similarity >= match.threshold
    assert match.candidates[0].person_id == person_id and len(match.candidates) <= 3

    person = eventually("projection", lambda: client.get_person(person_id))
    assert isinstance(person, Person) and person.face_count == len(enrolled.accepted)
    assert {f.face_id for f in person.faces} == {a.face_id for a in enrolled.accepted}
    page = client.list_persons(limit=1000)
    assert person_id in {p.person_id for p in page.items} and page.total >= 1

    face_id = enrolled.accepted[0].face_id
    receipt = client.delete_face(face_id)
    assert receipt.face_ids == [face_id] and receipt.tombstones[0].face_id == face_id
    erased = client.delete_person(person_id)
    assert erased.person_id == person_id and face_id not in erased.face_ids

    def gone() -> bool:
        try:
            client.get_person(person_id)
        except FacestreamError as exc:
            return exc.code == "unknown_person"
        return False

    eventually("erasure in the projection", gone)


def test_errors_carry_code_and_status(client: FacestreamClient, stack: Stack) -> None:
    with pytest.raises(FacestreamError) as missing:
        client.get_person("never.enrolled.py")
    assert (missing.value.status, missing.value.code) == (404, "unknown_person")

    with pytest.raises(FacestreamError) as undecodable:
        client.identify(("noise.jpg", b"definitely not a jpeg"))
    assert (undecodable.value.status, undecodable.value.code) == (422, "undecodable_image")

    with pytest.raises(FacestreamError) as bad_id:
        client.enroll("bad id!", [b"x"])
    assert (bad_id.value.status, bad_id.value.code) == (422, "invalid_person_id")

    with pytest.raises(FacestreamError) as rejected:
        client.enroll(f"py.bad.{uuid.uuid4().hex[:6]}", [("a.jpg", b"not an image")])
    assert rejected.value.status == 422 and rejected.value.rejected[0]["filename"] == "a.jpg"

    with pytest.raises(FacestreamError) as bad_param:
        client.identify(b"x", top_k=0)
    assert (bad_param.value.status, bad_param.value.code) == (422, "invalid_parameter")

    with (
        FacestreamClient(stack.api_url, api_key="wrong") as anonymous,
        pytest.raises(FacestreamError) as denied,
    ):
        anonymous.stats()
    assert (denied.value.status, denied.value.code) == (401, "unauthorized")

    with (
        FacestreamClient("http://127.0.0.1:9", api_key="k", timeout=2) as nowhere,
        pytest.raises(FacestreamError) as down,
    ):
        nowhere.health()
    assert down.value.status == 0 and down.value.code == "connection_error"


async def eventually_async(what: str, probe: Callable[[], Awaitable[T | None]], limit_s: float = 60.0) -> T:
    deadline = time.monotonic() + limit_s
    last: object = None
    while True:
        try:
            last = await probe()
            if last:
                return last  # type: ignore[return-value]
        except FacestreamError as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last: {last!r}")
        await asyncio.sleep(0.5)


async def test_async_round_trip(stack: Stack, faces: Path) -> None:
    person_id = f"py.async.{uuid.uuid4().hex[:8]}"
    pictures = photos(faces, "jennifer_aniston")
    async with AsyncFacestreamClient(stack.api_url, api_key=API_KEY) as fs:
        assert (await fs.health()).ready
        enrolled = await fs.enroll(person_id, [(p.name, p.read_bytes()) for p in pictures[:-1]])
        assert enrolled.accepted and enrolled.offsets

        # Read-your-writes: only a replica that applied the enrollment's offsets answers.
        match = await fs.identify(pictures[-1].read_bytes(), min_offsets=enrolled.offsets)
        assert match.person_id == person_id and not match.unknown

        async def sized() -> int | None:
            size = (await fs.stats()).gallery_size  # replica heartbeats report it a moment later
            return size if size >= len(enrolled.accepted) else None

        await eventually_async("gallery size in /stats", sized)
        page = await fs.list_persons(limit=10, offset=0)
        assert page.limit == 10
        with pytest.raises(FacestreamError) as missing:
            await fs.delete_face("0" * 32)
        assert (missing.value.status, missing.value.code) == (404, "unknown_face")
        await eventually_async("projection", lambda: fs.get_person(person_id))
        receipt = await fs.delete_person(person_id)
        assert set(receipt.face_ids) == {a.face_id for a in enrolled.accepted}
