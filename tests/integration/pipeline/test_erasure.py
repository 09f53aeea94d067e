"""Erasure is a command on the log: it reaches every replica without the database, wins the race
with an enrollment in flight, and after compaction the log holds no value for an erased face."""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from core.kafka import encode, envelope_headers
from schemas.envelope import Envelope
from schemas.events import EnrollFace
from tests.integration.faults.log_records import count_records
from tests.integration.pipeline.stack import Stack
from tests.integration.pipeline.test_end_to_end import HELD_BACK, PEOPLE, _files

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.models]

RACERS = 50


def candidates_of(stack: Stack, photo: bytes) -> set[str]:
    with stack.client() as client:
        response = client.post("/identify", files={"image": ("p.jpg", photo)}, params={"top_k": 100})
    assert response.status_code == 200, response.text
    return {c["person_id"] for c in response.json()["candidates"]}


def erase(stack: Stack, person: str) -> dict[str, Any]:
    with stack.client() as client:
        response = client.delete(f"/persons/{person}")
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


def settled(stack: Stack, erasure_id: str) -> dict[str, Any] | None:
    """The receipt once it is done (or 404: the log never held the person); None while pending."""
    with stack.client() as client:
        response = client.get(f"/erasures/{erasure_id}")
    if response.status_code == 404:
        return response.json()  # type: ignore[no-any-return]
    assert response.status_code == 200, response.text
    body = response.json()
    return body if body["status"] == "done" else None


def test_enroll_then_erase_at_once(stack: Stack) -> None:
    person = f"erase.now.{uuid.uuid4().hex[:6]}"
    photos = PEOPLE["elon_musk"][1:3]
    with stack.client() as client:
        enrolled = client.post(f"/enroll/{person}", files=_files(photos))
    assert enrolled.status_code == 201, enrolled.text
    face_ids = sorted(a["face_id"] for a in enrolled.json()["accepted"])
    probe = HELD_BACK["elon_musk"].read_bytes()

    started = time.monotonic()
    accepted = erase(stack, person)
    # No replica returns the person within 5 s of the erasure.
    stack.wait_for(
        "the person gone from every answer", lambda: person not in candidates_of(stack, probe), timeout=5
    )
    receipt = stack.wait_for("the receipt done", lambda: settled(stack, accepted["erasure_id"]), timeout=120)
    done_after = time.monotonic() - started
    assert receipt["face_ids"] == face_ids and receipt["person_id"] == person
    assert receipt["projection_applied"] is True
    assert receipt["replicas"] and all(r["applied"] for r in receipt["replicas"])
    assert person not in candidates_of(stack, probe)
    print(f"erasure done (replicas + projection) {done_after:.2f}s after the DELETE")


def test_a_person_the_log_never_held_is_a_404(stack: Stack) -> None:
    accepted = erase(stack, f"never.{uuid.uuid4().hex[:6]}")
    body = stack.wait_for("the eraser's answer", lambda: settled(stack, accepted["erasure_id"]), timeout=60)
    assert body["code"] == "unknown_person"


async def _produce_enrollments(bootstrap: str, topic: str, commands: list[EnrollFace]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, max_request_size=32 * 1024 * 1024
    )
    await producer.start()
    try:
        futures = []
        for command in commands:
            envelope = Envelope.wrap(command, correlation_id=command.enrollment_id)
            futures.append(
                await producer.send(
                    topic, encode(envelope), command.person_id.encode(), headers=envelope_headers(envelope)
                )
            )
        await asyncio.gather(*futures)  # acknowledged: on the log before any erasure is sent
    finally:
        await producer.stop()


def test_enrollments_racing_erasures_never_survive_them(stack: Stack) -> None:
    """50 enrollments on the log, still in flight, and at once 50 erasures of the same ids:
    once every receipt is settled, none of them is identifiable and every face is tombstoned."""
    run = uuid.uuid4().hex[:6]
    people = [p for p in PEOPLE if p != "elon_musk"]
    racers = [(f"race.{run}.{n:02d}", PEOPLE[people[n % len(people)]][1]) for n in range(RACERS)]
    commands = [
        EnrollFace(
            enrollment_id=uuid.uuid4().hex, person_id=person, filename=photo.name, image=photo.read_bytes()
        )
        for person, photo in racers
    ]
    prefix = stack.env["FACESTREAM_TOPIC_PREFIX"]
    asyncio.run(
        _produce_enrollments(
            stack.env["FACESTREAM_KAFKA_BOOTSTRAP"], f"{prefix}.enroll.requests.v1", commands
        )
    )
    with ThreadPoolExecutor(max_workers=8) as pool:
        accepted = list(pool.map(lambda racer: erase(stack, racer[0]), racers))

    receipts = [
        stack.wait_for(
            f"receipt of {a['person_id']}", lambda a=a: settled(stack, a["erasure_id"]), timeout=300
        )
        for a in accepted
    ]
    erased = {r["person_id"]: r["face_ids"] for r in receipts if "face_ids" in r}
    # Every enrollment was on the log before its erasure: the eraser found (nearly) all faces.
    assert len(erased) >= RACERS - 2, [r for r in receipts if "face_ids" not in r]
    ids = {person for person, _ in racers}
    for photo in {photo for _, photo in racers}:
        assert not ids & candidates_of(stack, photo.read_bytes())
    on_log = count_records(stack.env["FACESTREAM_KAFKA_BOOTSTRAP"], f"{prefix}.face.embeddings.v1")
    for person, face_ids in erased.items():
        for face_id in face_ids:
            assert on_log.tombstones[face_id] >= 1, (person, face_id)


async def _compact_now(bootstrap: str, topics: list[str]) -> None:
    """Small segments and an eager cleaner on these topics, and a filler record on every
    partition so that the segment holding the tombstones closes and can be cleaned."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        eager = {"segment.ms": "100", "min.cleanable.dirty.ratio": "0.0001", "min.compaction.lag.ms": "0"}
        # AlterConfigs replaces a topic's whole config: keep what it has (cleanup.policy above all).
        current = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in topics])
        resources = []
        for response in current:
            for _, _, _, name, entries in response.resources:
                # (name, value, read_only, source, sensitive, synonyms); source 1 = set on the topic
                kept = {e[0]: e[1] for e in entries if e[3] == 1 and e[1] is not None}
                resources.append(ConfigResource(ConfigResourceType.TOPIC, name, {**kept, **eager}))
        await admin.alter_configs(resources)
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    await asyncio.sleep(0.5)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for topic in described:
            for partition in topic["partitions"]:
                filler = f"compaction-filler-{uuid.uuid4().hex}".encode()
                await producer.send_and_wait(topic["topic"], None, filler, partition=partition["partition"])
    finally:
        await producer.stop()


def test_after_compaction_no_value_remains_for_an_erased_face(stack: Stack) -> None:
    person = f"erase.compact.{uuid.uuid4().hex[:6]}"
    with stack.client() as client:
        enrolled = client.post(f"/enroll/{person}", files=_files(PEOPLE["jeff_bezos"][1:3]))
    assert enrolled.status_code == 201, enrolled.text
    face_ids = [a["face_id"] for a in enrolled.json()["accepted"]]
    accepted = erase(stack, person)
    stack.wait_for("the receipt done", lambda: settled(stack, accepted["erasure_id"]), timeout=120)

    bootstrap, prefix = stack.env["FACESTREAM_KAFKA_BOOTSTRAP"], stack.env["FACESTREAM_TOPIC_PREFIX"]
    topics = [f"{prefix}.face.embeddings.v1", f"{prefix}.enrollment.images.v1"]
    before = count_records(bootstrap, topics[0])
    assert all(before.values[f] >= 1 for f in face_ids)  # the values are there until compaction

    def compacted() -> bool:
        asyncio.run(_compact_now(bootstrap, topics))
        counts = [count_records(bootstrap, t) for t in topics]
        return all(c.values[f] == 0 and c.tombstones[f] >= 1 for c in counts for f in face_ids)

    stack.wait_for("compaction of the erased faces' values", compacted, timeout=180)
