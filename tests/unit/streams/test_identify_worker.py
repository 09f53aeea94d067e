"""IdentifyProcessor with the fake engine and an in-memory sender (no Kafka)."""

from __future__ import annotations

import pytest

from core.settings import Settings
from engine.fake import DeterministicFakeEngine
from schemas.events import DeadLetter, IdentifyFailed, IdentifyQuery
from streams.identify_worker import IdentifyProcessor
from tests.unit.streams.factories import (
    REPLY_TOPIC,
    FakeSender,
    MessageFactory,
    identify_command,
    known_reply_topics,
    metrics,
    settings,
)


@pytest.fixture
def config() -> Settings:
    return settings(threshold=0.4, top_k=7)


async def run(config: Settings, *messages: object) -> FakeSender:
    sender = FakeSender()
    await IdentifyProcessor(
        config, DeterministicFakeEngine(), metrics(), sender, known_reply_topics(config)
    ).process(list(messages))
    return sender


async def test_good_image_becomes_a_query_carrying_reply_to(config: Settings) -> None:
    topics = config.topics
    msgs = MessageFactory(topics.identify_requests)
    command = identify_command(b"FAKE:alice:3")
    sender = await run(config, msgs.envelope(command))

    (record,) = sender.sent
    assert record.topic == topics.identify_queries
    assert record.header_map["reply_to"] == REPLY_TOPIC
    assert record.key_str == command.payload.request_id
    query = record.payload(IdentifyQuery)
    assert query.request_id == command.payload.request_id
    assert (query.top_k, query.threshold) == (7, 0.4)  # the settings' defaults
    assert query.embedding.model.id == "fake/fake@1"
    assert record.envelope(IdentifyQuery).correlation_id == command.correlation_id


async def test_request_parameters_override_the_defaults(config: Settings) -> None:
    msgs = MessageFactory(config.topics.identify_requests)
    sender = await run(config, msgs.envelope(identify_command(top_k=2, threshold=-0.5)))
    query = sender.sent[0].payload(IdentifyQuery)
    assert (query.top_k, query.threshold) == (2, -0.5)


async def test_threshold_zero_is_not_replaced_by_the_default(config: Settings) -> None:
    msgs = MessageFactory(config.topics.identify_requests)
    sender = await run(config, msgs.envelope(identify_command(threshold=0.0)))
    assert sender.sent[0].payload(IdentifyQuery).threshold == 0.0


@pytest.mark.parametrize(
    ("image", "code"), [(b"FAKE-NOFACE", "no_face"), (b"\xff\xd8 not really", "undecodable_image")]
)
async def test_unanswerable_image_fails_on_the_reply_topic(config: Settings, image: bytes, code: str) -> None:
    msgs = MessageFactory(config.topics.identify_requests)
    command = identify_command(image)
    sender = await run(config, msgs.envelope(command))
    (record,) = sender.sent
    assert record.topic == REPLY_TOPIC
    failed = record.payload(IdentifyFailed)
    assert failed.request_id == command.payload.request_id
    assert failed.error.code == code
    assert failed.error.message


async def test_camera_without_reply_to_goes_to_results(config: Settings) -> None:
    topics = config.topics
    msgs = MessageFactory(topics.identify_requests)
    sender = await run(
        config,
        msgs.envelope(identify_command(b"FAKE:bob:1", source="cam-1"), reply_to=None),
        msgs.envelope(identify_command(b"FAKE-NOFACE", source="cam-1"), reply_to=None),
    )
    query, failure = sender.sent
    assert query.topic == topics.identify_queries
    assert query.header_map["reply_to"] == topics.identify_results
    assert failure.topic == topics.identify_results
    assert failure.payload(IdentifyFailed).error.code == "no_face"


@pytest.mark.parametrize(
    "hostile",
    [
        "facestream.face.embeddings.v1",
        "facestream.deadletter.v1",
        "other.replies.v1.x",
        "facestream.replies.v1.",
    ],
)
async def test_hostile_reply_to_is_ignored(config: Settings, hostile: str) -> None:
    topics = config.topics
    msgs = MessageFactory(topics.identify_requests)
    sender = await run(
        config,
        msgs.envelope(identify_command(b"FAKE:bob:1"), reply_to=hostile),
        msgs.envelope(identify_command(b"FAKE-NOFACE"), reply_to=hostile),
    )
    query, failure = sender.sent
    assert query.header_map["reply_to"] == topics.identify_results
    assert failure.topic == topics.identify_results
    assert hostile not in {s.topic for s in sender.sent}


async def test_poison_records_are_dead_lettered(config: Settings) -> None:
    topics = config.topics
    msgs = MessageFactory(topics.identify_requests, partition=1)
    bad = msgs.raw(b'{"event_id": 1}', key=b"cam")
    sender = await run(config, bad, msgs.envelope(identify_command(b"FAKE:bob:1")))
    letters = sender.on(topics.dead_letter)
    (letter_rec,) = letters
    letter = letter_rec.payload(DeadLetter)
    assert (letter.reason, letter.stage) == ("invalid_message", "identify")
    assert (letter.topic, letter.partition, letter.offset) == (bad.topic, 1, bad.offset)
    assert len(sender.on(topics.identify_queries)) == 1


async def test_policy_all_yields_one_query_per_face() -> None:
    config = settings(multi_face_policy="all")
    msgs = MessageFactory(config.topics.identify_requests)
    sender = FakeSender()
    await IdentifyProcessor(
        config,
        DeterministicFakeEngine(multi_face_policy="all"),
        metrics(),
        sender,
        known_reply_topics(config),
    ).process([msgs.envelope(identify_command(b"FAKE-MULTI"))])
    queries = [s.payload(IdentifyQuery) for s in sender.on(config.topics.identify_queries)]
    assert [(q.face_index, q.face_count) for q in queries] == [(0, 2), (1, 2)]
    assert len({q.request_id for q in queries}) == 1
