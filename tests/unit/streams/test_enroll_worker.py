"""EnrollProcessor end to end with the fake engine and an in-memory sender (no Kafka)."""

from __future__ import annotations

import base64
import hashlib
import json
import os

import pytest

from core.crypto import ImageCipher
from core.galleries import face_id_for
from core.kafka import encode
from core.settings import Settings
from engine.fake import DeterministicFakeEngine
from schemas.envelope import Envelope
from schemas.events import DeadLetter, EnrollFace, EnrollmentImage, ErasePerson, FaceEmbedded, ImageEnrolled
from streams.enroll_worker import EnrollProcessor
from tests.unit.streams.factories import (
    REPLY_TOPIC,
    FakeSender,
    MessageFactory,
    enroll_command,
    known_reply_topics,
    metrics,
    settings,
)


@pytest.fixture
def config() -> Settings:
    return settings()


def processor(config: Settings, sender: FakeSender) -> EnrollProcessor:
    return EnrollProcessor(config, DeterministicFakeEngine(), metrics(), sender, known_reply_topics(config))


async def test_good_image_is_embedded_and_answered(config: Settings) -> None:
    topics = config.topics
    sender = FakeSender()
    msgs = MessageFactory(topics.enroll_requests)
    await processor(config, sender).process([msgs.envelope(enroll_command("alice", b"FAKE:alice:1"))])

    (embedded,) = sender.on(topics.embeddings)
    fact = embedded.payload(FaceEmbedded)
    assert embedded.key_str == fact.face_id
    assert fact.person_id == "alice"
    assert len(fact.embedding.vector_f32le) == 512 * 4
    assert embedded.header_map["event_type"] == "FaceEmbedded"

    (outcome_rec,) = sender.on(topics.enrollment_outcomes)
    (reply_rec,) = sender.on(REPLY_TOPIC)
    outcome = outcome_rec.payload(ImageEnrolled)
    assert outcome.status == "accepted"
    assert outcome.face_id == fact.face_id
    assert outcome.model == "fake/fake@1"
    assert (outcome.embedding_partition, outcome.embedding_offset) == (embedded.partition, embedded.offset)
    assert reply_rec.payload(ImageEnrolled) == outcome
    assert reply_rec.envelope(ImageEnrolled).correlation_id == "enr-1"
    assert outcome_rec.key_str == "enr-1"


async def test_face_id_is_deterministic_and_reenrolling_reuses_it(config: Settings) -> None:
    topics = config.topics
    sender = FakeSender()
    msgs = MessageFactory(topics.enroll_requests)
    proc = processor(config, sender)
    await proc.process([msgs.envelope(enroll_command("alice", b"FAKE:alice:1", enrollment_id="e1"))])
    await proc.process([msgs.envelope(enroll_command("alice", b"FAKE:alice:1", enrollment_id="e2"))])
    await proc.process([msgs.envelope(enroll_command("alice", b"FAKE:alice:2", enrollment_id="e3"))])
    await proc.process([msgs.envelope(enroll_command("bob", b"FAKE:alice:1", enrollment_id="e4"))])

    ids = [s.key_str for s in sender.on(topics.embeddings)]
    assert ids[0] == ids[1]  # same person, same photo: same face, not a new one
    assert len(set(ids)) == 3  # another photo, or the same photo for another person: new faces
    assert ids[0] == face_id_for("default", "alice", hashlib.sha256(b"FAKE:alice:1").hexdigest())


async def test_mixed_batch_outcomes_and_dead_letters(config: Settings) -> None:
    topics = config.topics
    sender = FakeSender()
    msgs = MessageFactory(topics.enroll_requests, partition=2)
    wrong_type = Envelope.wrap(enroll_command().payload.model_copy(), correlation_id="c").model_dump(
        mode="json"
    )
    wrong_type["type"] = "IdentifyFace"
    bad_person = enroll_command().model_dump(mode="json")
    bad_person["payload"]["person_id"] = "bad id!"
    batch = [
        msgs.envelope(enroll_command("alice", b"FAKE:alice:1", image_index=0, image_count=3)),
        msgs.envelope(enroll_command("alice", b"FAKE-NOFACE", image_index=1, image_count=3)),
        msgs.envelope(enroll_command("alice", b"\x89PNG garbage", image_index=2, image_count=3)),
        msgs.raw(b"not json at all", key=b"k1", headers={"correlation_id": "corr-x"}),
        msgs.raw(json.dumps(wrong_type).encode()),
        msgs.raw(json.dumps(bad_person).encode()),
        msgs.raw(None),
    ]
    poison = batch[3:]
    await processor(config, sender).process(batch)

    assert len(sender.on(topics.embeddings)) == 1
    outcomes = sorted(
        (s.payload(ImageEnrolled) for s in sender.on(topics.enrollment_outcomes)),
        key=lambda o: o.image_index,
    )
    assert [(o.status, o.reason) for o in outcomes] == [
        ("accepted", None),
        ("rejected", "no_face"),
        ("rejected", "undecodable_image"),
    ]
    assert all(o.message for o in outcomes[1:])
    assert len(sender.on(REPLY_TOPIC)) == 3

    letters = sender.on(topics.dead_letter)
    assert len(letters) == len(poison)
    for record, original in zip(letters, poison, strict=True):
        letter = record.payload(DeadLetter)
        assert letter.reason == "invalid_message"
        assert letter.stage == "enroll"
        assert (letter.topic, letter.partition, letter.offset) == (
            original.topic,
            original.partition,
            original.offset,
        )
        assert letter.value == (original.value or b"")
        assert record.key_str == f"{original.topic}:{original.partition}:{original.offset}"
    first = letters[0]
    assert first.payload(DeadLetter).key == "k1"
    assert first.envelope(DeadLetter).correlation_id == "corr-x"


async def test_no_reply_without_reply_to(config: Settings) -> None:
    topics = config.topics
    sender = FakeSender()
    msgs = MessageFactory(topics.enroll_requests)
    await processor(config, sender).process([msgs.envelope(enroll_command(), reply_to=None)])
    assert {s.topic for s in sender.sent} == {topics.embeddings, topics.enrollment_outcomes}


@pytest.mark.parametrize(
    "hostile",
    [
        "facestream.face.embeddings.v1",
        "facestream.enrollment.outcomes.v1",
        "facestream.deadletter.v1",
        "__consumer_offsets",
        "facestream.replies.v1.",
    ],
)
async def test_hostile_reply_to_is_ignored(config: Settings, hostile: str) -> None:
    topics = config.topics
    sender = FakeSender()
    msgs = MessageFactory(topics.enroll_requests)
    await processor(config, sender).process([msgs.envelope(enroll_command(), reply_to=hostile)])
    assert [s.topic for s in sender.sent] == [topics.embeddings, topics.enrollment_outcomes]
    (embedded,) = sender.on(topics.embeddings)
    embedded.payload(FaceEmbedded)  # only FaceEmbedded facts on the embeddings topic


async def test_empty_batch_sends_nothing(config: Settings) -> None:
    sender = FakeSender()
    await processor(config, sender).process([])
    assert sender.sent == []


async def test_multi_face_image_takes_the_largest_face(config: Settings) -> None:
    topics = config.topics
    sender = FakeSender()
    msgs = MessageFactory(topics.enroll_requests)
    await processor(config, sender).process([msgs.envelope(enroll_command("m", b"FAKE-MULTI"))])
    fact = sender.on(topics.embeddings)[0].payload(FaceEmbedded)
    assert fact.bbox.width == 200.0


def test_enroll_command_rejects_bad_person_id() -> None:
    with pytest.raises(ValueError):
        EnrollFace(enrollment_id="e", person_id="x" * 129, image=b"FAKE:x:1")


async def test_retained_images_are_sealed_and_sent_before_their_embeddings() -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    config = settings(retain_images=True, image_encryption_key=key)
    topics = config.topics
    sender = FakeSender()
    msgs = MessageFactory(topics.enroll_requests)
    await processor(config, sender).process(
        [
            msgs.envelope(enroll_command("alice", b"FAKE:alice:1")),
            msgs.envelope(enroll_command("bob", b"FAKE-NOFACE")),
        ]
    )
    (kept,) = sender.on(topics.enrollment_images)  # the rejected image is not kept
    image = kept.payload(EnrollmentImage)
    (embedded,) = sender.on(topics.embeddings)
    assert kept.key_str == image.face_id == embedded.payload(FaceEmbedded).face_id
    assert image.sealed and image.image != b"FAKE:alice:1"
    assert ImageCipher(key).open(image.image, bound_to=image.face_id) == b"FAKE:alice:1"
    assert sender.sent.index(kept) < sender.sent.index(embedded)


async def test_images_are_not_kept_unless_configured(config: Settings) -> None:
    sender = FakeSender()
    msgs = MessageFactory(config.topics.enroll_requests)
    await processor(config, sender).process([msgs.envelope(enroll_command("alice", b"FAKE:alice:1"))])
    assert sender.on(config.topics.enrollment_images) == []


class SenderEnds:
    """End offsets as the fake sender's log stands: what a broker's high-water marks say."""

    def __init__(self, sender: FakeSender) -> None:
        self.sender = sender

    async def of(self, topic: str) -> dict[int, int]:
        return {p: self.sender._offsets.get((topic, p), 0) for p in range(self.sender.partitions)}


async def test_an_erasure_is_forwarded_between_the_enrollments_around_it(config: Settings) -> None:
    """Enroll, erase, enroll again in one batch: the erasure's barrier covers the first face
    and not the second, and it is forwarded after the first embedding is acknowledged."""
    topics = config.topics
    sender = FakeSender()
    msgs = MessageFactory(topics.enroll_requests)
    erase = Envelope.wrap(
        ErasePerson(erasure_id="e1", person_id="alice", requested_by="k"), correlation_id="e1"
    )
    worker = EnrollProcessor(
        config, DeterministicFakeEngine(), metrics(), sender, known_reply_topics(config), SenderEnds(sender)
    )
    await worker.process(
        [
            msgs.envelope(enroll_command("alice", b"FAKE:alice:1")),
            msgs.raw(encode(erase), key=b"alice", headers={"event_type": "ErasePerson"}),
            msgs.envelope(enroll_command("alice", b"FAKE:alice:2", enrollment_id="enr-2")),
        ]
    )
    before, after = sender.on(topics.embeddings)
    (forwarded,) = sender.on(topics.erasure_requests)
    assert forwarded.key_str == "alice"
    order = [s.topic for s in sender.sent]
    assert order.index(topics.embeddings) < order.index(topics.erasure_requests)
    assert len(order) - order[::-1].index(topics.embeddings) - 1 > order.index(topics.erasure_requests)
    barrier = forwarded.payload(ErasePerson).barrier
    assert before.offset < barrier[before.partition]
    assert after.offset >= barrier[after.partition]
    assert forwarded.payload(ErasePerson).outcomes_barrier  # the first outcome lies below it


async def test_a_malformed_erasure_is_dead_lettered(config: Settings) -> None:
    sender = FakeSender()
    msgs = MessageFactory(config.topics.enroll_requests)
    worker = EnrollProcessor(
        config, DeterministicFakeEngine(), metrics(), sender, known_reply_topics(config), SenderEnds(sender)
    )
    await worker.process([msgs.raw(b'{"not": "an envelope"}', headers={"event_type": "ErasePerson"})])
    assert sender.on(config.topics.erasure_requests) == []
    (letter,) = sender.on(config.topics.dead_letter)
    assert letter.payload(DeadLetter).stage == "enroll"
