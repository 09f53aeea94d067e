"""Poison on every input topic goes to the dead-letter topic and the pipeline moves on; the API
refuses a wrong key (401), a role without the right (403) and a key over its rate (429)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from core.settings import TopicNames
from tests.fixtures.services import ServiceEndpoints
from tests.integration.faults.harness import FaultStack, identify, launch_stack
from tests.integration.pipeline.stack import API_KEY

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.models, pytest.mark.timeout(300)]

VIEWER_KEY = "itest-viewer-key"
IDENTIFIER_KEY = "itest-identifier-key"
BURSTY_KEY = "itest-bursty-key"  # used by the rate-limit test only
RATE_PER_S = 5
BURST = 10

# Not JSON at all; JSON of the wrong shape; an envelope whose payload is not the topic's type.
POISON = [
    b"\xff\xfe\x00 definitely not an envelope {",
    b'{"type": "EnrollFace", "payload": 42}',
    json.dumps(
        {
            "event_id": "e-poison",
            "type": "SomethingElse",
            "schema_version": 1,
            "time": "2026-01-01T00:00:00Z",
            "correlation_id": "c-poison",
            "payload": {"hello": "world"},
        }
    ).encode(),
]


@pytest.fixture(scope="module")
def fault(services: ServiceEndpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    keys = f"{API_KEY}:admin,{VIEWER_KEY}:viewer,{IDENTIFIER_KEY}:identifier,{BURSTY_KEY}:identifier"
    with launch_stack(
        services,
        tmp_path_factory.mktemp("input"),
        name="input",
        api_keys=keys,
        rate_limit_per_s=str(RATE_PER_S),
        rate_limit_burst=str(BURST),
    ) as running:
        yield running


# --- poison messages ---------------------------------------------------------------------------


def _stages(topics: TopicNames) -> dict[str, set[str]]:
    """Each input topic, and the stages that consume it (each must dead-letter the poison)."""
    return {
        topics.enroll_requests: {"enroll"},
        topics.identify_requests: {"identify"},
        topics.embeddings: {"replica", "projector", "eraser"},
        topics.identify_queries: {"search"},
        topics.enrollment_outcomes: {"projector"},
    }


async def _produce_poison(bootstrap: str, topics: list[str]) -> list[tuple[str, int, int]]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        sent = []
        for topic in topics:
            for n, value in enumerate(POISON):
                # A key on every record: the embeddings topic is compacted and refuses keyless ones.
                meta = await producer.send_and_wait(topic, value, key=f"poison-{n}".encode())
                sent.append((topic, meta.partition, meta.offset))
        return sent
    finally:
        await producer.stop()


async def _dead_letters(bootstrap: str, topic: str, wanted: int, timeout_s: float) -> list[dict]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    letters: list[dict] = []
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and len(letters) < wanted:
            batches = await consumer.getmany(timeout_ms=1000)
            letters += [json.loads(r.value) for rs in batches.values() for r in rs]
        return letters
    finally:
        await consumer.stop()


def test_poison_on_every_input_topic_is_dead_lettered_and_the_pipeline_goes_on(
    fault: FaultStack, photos: list[bytes]
) -> None:
    topics = TopicNames(prefix=fault.prefix)
    # A real identify first: the replica's query consumer is then surely assigned (it starts
    # at the latest offset, so poison produced before its assignment would never be seen).
    with fault.client() as client:
        assert (
            client.post("/enroll/before.poison", files=[("images", ("a.jpg", photos[0]))]).status_code == 201
        )
    assert identify(fault, photos[0]).status_code == 200

    stages = _stages(topics)
    sent = asyncio.run(_produce_poison(fault.kafka, list(stages)))
    wanted = sum(len(stages[topic]) for topic, _, _ in sent)
    letters = asyncio.run(_dead_letters(fault.kafka, topics.dead_letter, wanted, timeout_s=60))

    found: dict[tuple[str, int, int], set[str]] = {}
    for letter in letters:
        assert letter["type"] == "DeadLetter"
        payload = letter["payload"]
        assert payload["reason"] and payload["message"] and payload["stage"], payload
        found.setdefault((payload["topic"], payload["partition"], payload["offset"]), set()).add(
            payload["stage"]
        )
    missing = {coords: stages[coords[0]] - found.get(coords, set()) for coords in sent}
    assert not {c: s for c, s in missing.items() if s}, f"no dead letter for {missing}; got {found}"
    unexpected = set(found) - set(sent)
    assert not unexpected, f"dead letters for records that were not poison: {unexpected}"
    assert all(p["reason"] == "invalid_message" for p in (letter["payload"] for letter in letters))

    # ... and every stage went on: a new person is enrolled, projected and identified.
    person, photo = "after.poison", photos[1]
    with fault.client() as client:
        response = client.post(f"/enroll/{person}", files=[("images", ("b.jpg", photo))])
    assert response.status_code == 201, response.text
    fault.wait_for("the replica to hold both faces", lambda: fault.replica_sizes().get("replica-a") == 2)
    response = identify(fault, photo)
    assert response.status_code == 200 and response.json()["person_id"] == person, response.text
    fault.wait_for("the projection of both faces", lambda: fault.faces_in_database()["faces"] == 2)
    fault.stack.assert_running()


# --- authentication, authorisation, rate limiting ------------------------------------------------


def test_wrong_key_is_401_unauthorized(fault: FaultStack, photos: list[bytes]) -> None:
    for headers in ({"X-API-Key": "not-a-key"}, {}):
        with fault.client() as client:
            client.headers.pop("X-API-Key")
            response = client.post("/identify", files={"image": ("p.jpg", photos[0])}, headers=headers)
        assert response.status_code == 401, response.text
        assert response.json()["code"] == "unauthorized"
        assert "not-a-key" not in response.text


def test_role_without_the_right_is_403_forbidden(fault: FaultStack, photos: list[bytes]) -> None:
    response = identify(fault, photos[0], key=VIEWER_KEY)
    assert (response.status_code, response.json()["code"]) == (403, "forbidden"), response.text
    with fault.client(IDENTIFIER_KEY) as client:
        enroll = client.post("/enroll/someone", files=[("images", ("p.jpg", photos[0]))])
        stats = client.get("/stats")
        override = client.post("/identify", files={"image": ("p.jpg", photos[0])}, params={"threshold": 0.3})
    assert (enroll.status_code, enroll.json()["code"]) == (403, "forbidden"), enroll.text
    assert (stats.status_code, stats.json()["code"]) == (403, "forbidden"), stats.text
    assert override.status_code == 200, override.text  # identifiers may override the threshold
    with fault.client(VIEWER_KEY) as client:
        assert client.get("/stats").status_code == 200


def test_over_the_rate_is_429_rate_limited(fault: FaultStack) -> None:
    attempts = BURST * 3

    def call(_: int) -> tuple[int, str]:
        with fault.client(BURSTY_KEY) as client:
            # Not an image: cheap to answer, and a rate limit applies before any work anyway.
            response = client.post("/identify", files={"image": ("x.jpg", b"not an image")}, timeout=60)
        return response.status_code, response.json().get("code", "")

    with ThreadPoolExecutor(max_workers=attempts) as pool:
        answers = list(pool.map(call, range(attempts)))
    limited = [a for a in answers if a[0] == 429]
    assert limited, f"no 429 in {attempts} simultaneous requests with burst {BURST}: {answers}"
    assert {code for _, code in limited} == {"rate_limited"}
    # The burst is honoured: at least BURST requests got through to the pipeline.
    passed = [a for a in answers if a[0] != 429]
    assert len(passed) >= BURST, answers
    assert all(a == (422, "undecodable_image") for a in passed), answers
    # Other keys have their own budget.
    with fault.client(IDENTIFIER_KEY) as client:
        other = client.post("/identify", files={"image": ("x.jpg", b"not an image")}, timeout=60)
    assert other.status_code == 422, other.text
    # And the key recovers at its sustained rate.
    time.sleep(BURST / RATE_PER_S + 0.5)
    assert call(0) == (422, "undecodable_image")
