"""The facade's wait for replies: at-least-once delivery may repeat an answer, and a repeat
never stands in for an answer still missing."""

from __future__ import annotations

from fastapi import FastAPI

from api.gateway import _Awaiting
from api.routes.enroll import _image_of
from api.routes.identify import _answer_of
from core.kafka import encode
from schemas.envelope import Envelope
from schemas.events import Candidate, ErrorInfo, FaceSearched, IdentifyFailed, ImageEnrolled
from tests.unit.api.factories import client, image


def _searched(shard: str, face_index: int = 0, face_count: int = 1) -> bytes:
    answer = FaceSearched(
        request_id="r",
        candidates=[Candidate(person_id=f"in-{shard}", similarity=0.9, face_id=f"f-{shard}")],
        threshold=0.5,
        top_k=3,
        model="m",
        replica_id=f"{shard}-1",
        gallery_size=10,
        shard=shard,
        face_index=face_index,
        face_count=face_count,
    )
    return encode(Envelope.wrap(answer, correlation_id="r"))


def _enrolled(image_index: int) -> bytes:
    outcome = ImageEnrolled(
        enrollment_id="e",
        person_id="p",
        image_index=image_index,
        image_count=2,
        filename=f"{image_index}.jpg",
        status="rejected",
        reason="no_face",
        model="m",
    )
    return encode(Envelope.wrap(outcome, correlation_id="e"))


async def test_a_shard_answering_twice_does_not_stand_in_for_another() -> None:
    waiting = _Awaiting(expected=2, identity=_answer_of)
    waiting.add(_searched("shard-a"))
    waiting.add(_searched("shard-a"))  # redone by a replica that had not committed
    assert not waiting.done.done()
    waiting.add(_searched("shard-b"))
    replies = await waiting.done
    assert [_answer_of(r) for r in replies] == [("shard-a", 0), ("shard-b", 0)]


async def test_each_face_of_a_shard_is_its_own_answer() -> None:
    waiting = _Awaiting(expected=2, identity=_answer_of)
    waiting.add(_searched("shard-a", face_index=0, face_count=2))
    waiting.add(_searched("shard-a", face_index=1, face_count=2))
    assert len(await waiting.done) == 2


async def test_an_image_enrolled_twice_does_not_stand_in_for_another() -> None:
    waiting = _Awaiting(expected=2, identity=_image_of)
    waiting.add(_enrolled(0))
    waiting.add(_enrolled(0))
    assert not waiting.done.done()
    waiting.add(_enrolled(1))
    assert sorted(_image_of(r) for r in await waiting.done) == [0, 1]


async def test_a_failure_still_ends_the_wait() -> None:
    waiting = _Awaiting(expected=2, identity=_answer_of, final=lambda reply: b"IdentifyFailed" in reply)
    failed = IdentifyFailed(request_id="r", error=ErrorInfo(code="no_face", message="none"))
    waiting.add(encode(Envelope.wrap(failed, correlation_id="r")))
    assert len(await waiting.done) == 1


def test_the_routes_wait_for_distinct_answers(app: FastAPI) -> None:
    # Enroll is covered through the fake gateway, which delivers its first reply twice.
    assert client(app).post("/identify", files={"image": ("p.jpg", image())}).status_code == 200
    assert app.state.gateway.options[-1]["identity"] is _answer_of
