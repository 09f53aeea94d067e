"""The typed Python client, sync and async, against the live stack."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from facestream_client import (
    AsyncFacestreamClient,
    EnrollResult,
    ErasureAccepted,
    ErasureReceipt,
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

    # Erasure: 202 with an erasure id at once, then the receipt until it is done.
    face_id = enrolled.accepted[0].face_id
    accepted = client.delete_face(face_id)
    assert isinstance(accepted, ErasureAccepted)
    assert (accepted.kind, accepted.face_id, accepted.person_id, accepted.status) == (
        "face",
        face_id,
        None,
        "pending",
    )
    assert accepted.receipt == f"/erasures/{accepted.erasure_id}" and accepted.command.offset >= 0
    receipt = client.wait_for_erasure(accepted.erasure_id, timeout=60)
    assert isinstance(receipt, ErasureReceipt) and receipt.done and receipt.waiting_for == []
    assert (receipt.kind, receipt.face_ids, receipt.person_id) == ("face", [face_id], person_id)
    assert receipt.tombstones and receipt.projection_applied
    assert receipt.replicas and all(r.applied for r in receipt.replicas)
    assert receipt.shards and all(s.applied for s in receipt.shards)
    assert receipt.requested_at is not None and receipt.erased_at is not None
    # Done means the projection has applied it: the row is gone now, not eventually.
    assert {f.face_id for f in client.get_person(person_id).faces} == {
        a.face_id for a in enrolled.accepted[1:]
    }
    again = client.erasure(accepted.erasure_id)  # done stays done
    assert again.done and (again.face_ids, again.tombstones) == (receipt.face_ids, receipt.tombstones)

    accepted = client.delete_person(person_id)
    assert (accepted.kind, accepted.person_id, accepted.face_id) == ("person", person_id, None)
    erased = client.wait_for_erasure(accepted.erasure_id, timeout=60)
    assert erased.done and erased.kind == "person" and erased.person_id == person_id
    assert set(erased.face_ids) == {a.face_id for a in enrolled.accepted[1:]}
    with pytest.raises(FacestreamError) as gone:
        client.get_person(person_id)
    assert (gone.value.status, gone.value.code) == (404, "unknown_person")
    # Done means every ready replica has applied the tombstones: none can return the person.
    after = client.identify(pictures[-1], top_k=10)
    assert person_id not in {c.person_id for c in after.candidates}


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

    with pytest.raises(FacestreamError) as no_erasure:
        client.erasure("f" * 32)
    assert (no_erasure.value.status, no_erasure.value.code) == (404, "not_found")

    # Nothing to erase: the DELETE is accepted (the API never asks the database), the receipt
    # says so once the eraser has looked at the log.
    accepted = client.delete_person(f"py.never.{uuid.uuid4().hex[:6]}")
    with pytest.raises(FacestreamError) as unknown:
        client.wait_for_erasure(accepted.erasure_id, timeout=60)
    assert (unknown.value.status, unknown.value.code) == (404, "unknown_person")

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
        unknown_face = await fs.delete_face("0" * 32)
        assert unknown_face.kind == "face" and unknown_face.status == "pending"
        with pytest.raises(FacestreamError) as missing:
            await fs.wait_for_erasure(unknown_face.erasure_id, timeout=60)
        assert (missing.value.status, missing.value.code) == (404, "unknown_face")
        await eventually_async("projection", lambda: fs.get_person(person_id))
        accepted = await fs.delete_person(person_id)
        assert accepted.kind == "person" and accepted.person_id == person_id
        receipt = await fs.wait_for_erasure(accepted.erasure_id, timeout=60)
        again = await fs.erasure(accepted.erasure_id)
        assert receipt.done and again.done and again.face_ids == receipt.face_ids
        assert set(receipt.face_ids) == {a.face_id for a in enrolled.accepted}
        with pytest.raises(FacestreamError) as gone:
            await fs.get_person(person_id)
        assert gone.value.code == "unknown_person"


# Hermetic: the erasure calls against a scripted API (httpx.MockTransport), no stack.

ERASURE_ID = "9a0c6f3e1b2d4c5e8f7a6b5c4d3e2f10"
FACE_ID = "6b1f0e3c2d4a5b6c7d8e9f0a1b2c3d4e"


def accepted_body(kind: str = "person") -> dict[str, Any]:
    return {
        "erasure_id": ERASURE_ID,
        "kind": kind,
        "person_id": "jane.doe" if kind == "person" else None,
        "face_id": FACE_ID if kind == "face" else None,
        "status": "pending",
        "command": {"topic": "facestream.enroll.requests.v1", "partition": 2, "offset": 118},
        "receipt": f"/erasures/{ERASURE_ID}",
    }


def receipt_body(status: str, waiting_for: list[str]) -> dict[str, Any]:
    done = status == "done"
    return {
        "erasure_id": ERASURE_ID,
        "kind": "person",
        "person_id": "jane.doe",
        "face_ids": [FACE_ID] if "eraser" not in waiting_for else [],
        "status": status,
        "waiting_for": waiting_for,
        "requested_at": "2026-11-25T15:02:11Z",
        "erased_at": "2026-11-25T15:02:11.310000Z" if "eraser" not in waiting_for else None,
        "tombstones": [{"partition": 1, "offset": 42}] if "eraser" not in waiting_for else [],
        "shards": [{"group": "replicas", "partitions": [0, 1, 2], "applied": done}],
        "replicas": [
            {"replica_id": "replica-1", "group": "replicas", "partitions": [0, 1, 2], "applied": done}
        ],
        "projection_applied": done,
        "note": "Compaction removes ...",
    }


def error_body(code: str) -> dict[str, Any]:
    return {"code": code, "message": code, "request_id": "r"}


class ScriptedApi:
    """Answers each request with the next (status, body) of the script; records the requests."""

    def __init__(self, *answers: tuple[int, dict[str, Any]]) -> None:
        self.answers = list(answers)
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        status, body = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return httpx.Response(status, content=json.dumps(body), headers={"content-type": "application/json"})


def test_delete_answers_the_accepted_erasure() -> None:
    api = ScriptedApi((202, accepted_body("person")), (202, accepted_body("face")))
    with FacestreamClient("http://api.test", api_key="k", transport=httpx.MockTransport(api)) as fs:
        person = fs.delete_person("jane/doe")
        face = fs.delete_face(FACE_ID)
    assert [(r.method, r.url.raw_path) for r in api.seen] == [
        ("DELETE", b"/persons/jane%2Fdoe"),
        ("DELETE", f"/faces/{FACE_ID}".encode()),
    ]
    assert isinstance(person, ErasureAccepted) and person.erasure_id == ERASURE_ID
    assert (person.kind, person.person_id, person.face_id, person.status) == (
        "person",
        "jane.doe",
        None,
        "pending",
    )
    assert (person.command.topic, person.command.partition, person.command.offset) == (
        "facestream.enroll.requests.v1",
        2,
        118,
    )
    assert person.receipt == f"/erasures/{ERASURE_ID}"
    assert (face.kind, face.face_id, face.person_id) == ("face", FACE_ID, None)


def test_wait_for_erasure_polls_until_done() -> None:
    api = ScriptedApi(
        (404, error_body("not_found")),  # another API instance has not read the ledger yet
        (200, receipt_body("pending", ["eraser", "projection"])),
        (200, receipt_body("pending", ["replicas", "projection"])),
        (200, receipt_body("done", [])),
    )
    with FacestreamClient("http://api.test", transport=httpx.MockTransport(api)) as fs:
        receipt = fs.wait_for_erasure(ERASURE_ID, timeout=5, interval=0.01)
    assert len(api.seen) == 4 and {r.url.path for r in api.seen} == {f"/erasures/{ERASURE_ID}"}
    assert isinstance(receipt, ErasureReceipt) and receipt.done and receipt.waiting_for == []
    assert receipt.face_ids == [FACE_ID] and receipt.tombstones[0].offset == 42
    assert receipt.shards[0].applied and receipt.replicas[0].replica_id == "replica-1"
    assert receipt.projection_applied and receipt.erased_at is not None
    assert receipt.erased_at.microsecond == 310000 and receipt.erased_at.utcoffset() is not None


@pytest.mark.parametrize("code", ["unknown_person", "unknown_face"])
def test_wait_for_erasure_raises_when_there_was_nothing_to_erase(code: str) -> None:
    api = ScriptedApi((200, receipt_body("pending", ["eraser", "projection"])), (404, error_body(code)))
    with (
        FacestreamClient("http://api.test", transport=httpx.MockTransport(api)) as fs,
        pytest.raises(FacestreamError) as raised,
    ):
        fs.wait_for_erasure(ERASURE_ID, timeout=5, interval=0.01)
    assert (raised.value.status, raised.value.code) == (404, code) and len(api.seen) == 2


def test_wait_for_erasure_times_out_with_where_it_stood() -> None:
    api = ScriptedApi((200, receipt_body("pending", ["replicas", "projection"])))
    started = time.monotonic()
    with (
        FacestreamClient("http://api.test", transport=httpx.MockTransport(api)) as fs,
        pytest.raises(FacestreamError) as raised,
    ):
        fs.wait_for_erasure(ERASURE_ID, timeout=0.2, interval=0.05)
    assert 0.2 <= time.monotonic() - started < 2.0 and len(api.seen) >= 3
    assert (raised.value.status, raised.value.code) == (0, "timeout")
    assert raised.value.body == {
        "erasure_id": ERASURE_ID,
        "status": "pending",
        "waiting_for": ["replicas", "projection"],
    }
    assert "replicas, projection" in raised.value.message
    nowhere = httpx.MockTransport(ScriptedApi((404, error_body("not_found"))))
    with (
        FacestreamClient("http://api.test", transport=nowhere) as fs,
        pytest.raises(FacestreamError) as unknown,  # an unknown id: not_found up to the deadline
    ):
        fs.wait_for_erasure(ERASURE_ID, timeout=0.05, interval=0.01)
    assert unknown.value.code == "timeout" and unknown.value.body["last_error"] == "not_found"


async def test_async_erasure_calls() -> None:
    api = ScriptedApi(
        (202, accepted_body("face")),
        (200, receipt_body("pending", ["projection"])),
        (200, receipt_body("done", [])),
        (404, error_body("unknown_face")),
    )

    async def handler(request: httpx.Request) -> httpx.Response:
        return api(request)

    async with AsyncFacestreamClient("http://api.test", transport=httpx.MockTransport(handler)) as fs:
        accepted = await fs.delete_face(FACE_ID)
        assert accepted.kind == "face" and accepted.erasure_id == ERASURE_ID
        receipt = await fs.wait_for_erasure(accepted.erasure_id, timeout=5, interval=0.01)
        assert receipt.done and receipt.face_ids == [FACE_ID]
        with pytest.raises(FacestreamError) as unknown:
            await fs.erasure(accepted.erasure_id)
        assert (unknown.value.status, unknown.value.code) == (404, "unknown_face")
        with pytest.raises(FacestreamError) as late:
            await fs.wait_for_erasure(accepted.erasure_id, timeout=0.05, interval=0.01)
        assert late.value.code == "unknown_face"
    assert [r.method for r in api.seen] == ["DELETE", "GET", "GET", "GET", "GET"]


def test_quality_filter_is_sent_and_quality_read_back() -> None:
    answer = {
        "request_id": "r",
        "person_id": "jane.doe",
        "similarity": 0.6,
        "unknown": False,
        "threshold": 0.45,
        "candidates": [{"person_id": "jane.doe", "similarity": 0.6}],
        "model": "default/fr_feature@1",
        "quality": 0.12,
        "low_quality": True,
    }
    enrolled = {"person_id": "jane.doe", "enrollment_id": "e", "model": "m", "accepted": [], "rejected": []}
    api = ScriptedApi((200, answer), (201, enrolled))
    with FacestreamClient("http://api.test", api_key="k", transport=httpx.MockTransport(api)) as fs:
        result = fs.identify(b"jpeg", quality_filter="medium")
        fs.enroll("jane.doe", [b"jpeg"], quality_filter="none")
    assert (result.quality, result.low_quality) == (0.12, True)
    assert [r.url.params.get("quality_filter") for r in api.seen] == ["medium", "none"]


def test_gallery_round_trip(client: FacestreamClient, stack: Stack, faces: Path) -> None:
    """Create a gallery, enroll and identify in it with a client pinned to it, see its counts,
    then delete it: an erasure with a receipt of kind `gallery`."""
    gallery = f"py-{uuid.uuid4().hex[:8]}"
    created = client.create_gallery(gallery, description="python client test", threshold=0.3)
    assert (created.id, created.threshold, created.state) == (gallery, 0.3, "active")
    assert gallery in {g.id for g in client.list_galleries()}
    pictures = photos(faces, "angelina_jolie")
    with FacestreamClient(stack.api_url, api_key=API_KEY, gallery=gallery) as fs:
        enrolled = eventually("enrollment in the new gallery", lambda: fs.enroll("jane.doe", pictures[:-1]))
        assert enrolled.accepted
        match = fs.identify(pictures[-1], min_offsets=enrolled.offsets)
        assert (match.person_id, match.unknown, match.threshold) == ("jane.doe", False, 0.3)
        person = eventually("projection", lambda: fs.get_person("jane.doe"))
        assert person.face_count == len(enrolled.accepted)
    counted = eventually("counts", lambda: g if (g := client.get_gallery(gallery)).faces else None)
    assert (counted.persons, counted.faces) == (1, len(enrolled.accepted))
    # The same person id in the default gallery is another person: not enrolled there.
    with pytest.raises(FacestreamError) as elsewhere:
        client.get_person("jane.doe")
    assert elsewhere.value.code == "unknown_person"

    accepted = client.delete_gallery(gallery)
    assert (accepted.kind, accepted.gallery) == ("gallery", gallery)
    receipt = client.wait_for_erasure(accepted.erasure_id, timeout=90)
    assert receipt.done and receipt.kind == "gallery"
    with pytest.raises(FacestreamError) as gone:
        client.identify(pictures[-1], gallery=gallery)
    assert gone.value.status in (404, 409) and gone.value.code in ("unknown_gallery", "gallery_deleting")
