"""Enroll -> index -> identify -> search, wired by hand through the handlers (no Kafka)."""

from __future__ import annotations

import numpy as np
import pytest

from core.identification import merge
from core.kafka import decode
from core.settings import Settings
from core.vectors import from_embedding
from engine.fake import DeterministicFakeEngine
from index import registry
from index.base import search_persons
from schemas.events import DeadLetter, FaceEmbedded, FaceSearched, IdentifyQuery
from streams.enroll_worker import EnrollProcessor
from streams.handlers.search import answer
from streams.identify_worker import IdentifyProcessor
from streams.log_fold import PendingChanges
from streams.replica import IndexReplica
from tests.unit.streams.factories import (
    REPLY_TOPIC,
    FakeMessage,
    FakeSender,
    MessageFactory,
    enroll_command,
    identify_command,
    known_reply_topics,
    metrics,
    settings,
)

PEOPLE = ["alice", "bob", "carol", "dave", "erin"]


@pytest.fixture
def config() -> Settings:
    return settings(threshold=0.5, top_k=3)


async def enroll_everyone(config: Settings, engine: DeterministicFakeEngine) -> FakeSender:
    sender = FakeSender()
    msgs = MessageFactory(config.topics.enroll_requests)
    batch = [
        msgs.envelope(enroll_command(p, f"FAKE:{p}:{v}".encode(), enrollment_id=f"e-{p}", image_index=v))
        for p in PEOPLE
        for v in (1, 2)
    ]
    await EnrollProcessor(config, engine, metrics(), sender, known_reply_topics(config)).process(batch)
    return sender


async def identify(config: Settings, engine: DeterministicFakeEngine, *images: bytes) -> FakeSender:
    sender = FakeSender()
    msgs = MessageFactory(config.topics.identify_requests)
    await IdentifyProcessor(config, engine, metrics(), sender, known_reply_topics(config)).process(
        [msgs.envelope(identify_command(i)) for i in images]
    )
    return sender


async def test_each_identity_is_found_again(config: Settings) -> None:
    engine = DeterministicFakeEngine()
    enrolled = await enroll_everyone(config, engine)
    facts = [s.payload(FaceEmbedded) for s in enrolled.on(config.topics.embeddings)]
    assert len(facts) == 2 * len(PEOPLE)

    index = registry.create("faiss-flat", dim=512, model_id=engine.model.id)
    index.add(
        [f.face_id for f in facts],
        [f.person_id for f in facts],
        np.stack([from_embedding(f.embedding) for f in facts]),
        model_id=facts[0].embedding.model.id,
    )

    probes = [f"FAKE:{p}:probe".encode() for p in PEOPLE] + [b"FAKE:stranger:1"]
    asked = await identify(config, engine, *probes)
    queries = [s.payload(IdentifyQuery) for s in asked.on(config.topics.identify_queries)]
    assert len(queries) == len(probes)
    vectors = np.stack([from_embedding(q.embedding) for q in queries])
    found = search_persons(index, vectors, k=3, model_id=queries[0].embedding.model.id)
    answers = [
        answer(q, m, replica_id="r", gallery_size=len(index), search_ms=0.0)
        for q, m in zip(queries, found, strict=True)
    ]
    assert all(len(a.candidates) == 3 for a in answers)
    results = [merge([a]) for a in answers]
    for person, result in zip(PEOPLE, results[:-1], strict=True):
        assert result.person_id == person
        assert not result.unknown
        assert result.similarity is not None and result.similarity > 0.8
        assert len(result.candidates) == 3
        assert [c.person_id for c in result.candidates].count(person) == 1
    stranger = results[-1]
    assert stranger.unknown and stranger.person_id is None
    assert stranger.gallery_size == 10 == answers[-1].gallery_size


def as_records(sender: FakeSender, topic: str) -> list[FakeMessage]:
    return [
        FakeMessage(
            topic=s.topic, partition=s.partition, offset=s.offset, key=s.key, value=s.value, headers=s.headers
        )
        for s in sender.on(topic)
    ]


async def test_replica_answers_queries_from_the_log(config: Settings) -> None:
    engine = DeterministicFakeEngine()
    replica = IndexReplica(config, metrics(), engine.model)
    enrolled = await enroll_everyone(config, engine)

    pending, letters = PendingChanges(), []  # type: ignore[var-annotated]
    for record in as_records(enrolled, config.topics.embeddings):
        replica.follower.fold(record, pending, letters)  # type: ignore[arg-type]
    pending.apply(replica.state.index)
    assert letters == [] and len(replica.state.index) == 10

    asked = await identify(config, engine, b"FAKE:carol:new", b"FAKE:nobody:1")
    outputs = await replica.server.handle(as_records(asked, config.topics.identify_queries))  # type: ignore[arg-type]
    assert [o.topic for o in outputs] == [REPLY_TOPIC, REPLY_TOPIC]
    carol, nobody = (o.envelope.payload for o in outputs)
    assert isinstance(carol, FaceSearched) and isinstance(nobody, FaceSearched)
    # The replica ranks; the merge decides, with the threshold the query carried.
    assert carol.candidates[0].person_id == "carol" and merge([carol]).person_id == "carol"
    assert merge([nobody]).unknown


async def test_replica_dead_letters_a_malformed_query(config: Settings) -> None:
    """A query whose vector has the wrong length must not stop the replica's serve loop."""
    engine = DeterministicFakeEngine()
    replica = IndexReplica(config, metrics(), engine.model)
    asked = await identify(config, engine, b"FAKE:carol:new")
    (good,) = as_records(asked, config.topics.identify_queries)
    envelope = decode(good.value, IdentifyQuery)
    short = envelope.payload.embedding.model_copy(
        update={"vector_f32le": envelope.payload.embedding.vector_f32le[:40]}
    )
    nan = envelope.payload.embedding.model_copy(
        update={"vector_f32le": np.full(512, np.nan, "<f4").tobytes()}
    )
    zero = envelope.payload.embedding.model_copy(update={"vector_f32le": bytes(512 * 4)})
    ragged = envelope.payload.embedding.model_copy(update={"vector_f32le": bytes(512 * 4 + 1)})
    zero_k = envelope.payload.model_copy(update={"top_k": 0})
    poison = [
        FakeMessage(
            good.topic,
            0,
            7 + i,
            good.key,
            envelope.model_copy(update={"payload": payload}).model_dump_json().encode(),
            good.headers,
        )
        for i, payload in enumerate(
            [
                envelope.payload.model_copy(update={"embedding": short}),
                envelope.payload.model_copy(update={"embedding": nan}),
                envelope.payload.model_copy(update={"embedding": zero}),
                envelope.payload.model_copy(update={"embedding": ragged}),
                zero_k,
            ]
        )
    ]
    outputs = await replica.server.handle([*poison, good])  # type: ignore[arg-type]
    kinds = [type(o.envelope.payload) for o in outputs]
    assert kinds.count(FaceSearched) == 1
    assert kinds.count(DeadLetter) == 5
    assert outputs[-1].envelope.payload.request_id == envelope.payload.request_id


async def test_replica_dead_letters_unusable_embeddings(config: Settings) -> None:
    """A FaceEmbedded the index cannot hold must not stop the replica's apply loop."""
    engine = DeterministicFakeEngine()
    replica = IndexReplica(config, metrics(), engine.model)
    enrolled = await enroll_everyone(config, engine)
    good, *_ = as_records(enrolled, config.topics.embeddings)
    fact = decode(good.value, FaceEmbedded)
    other_model = fact.payload.embedding.model.model_copy(update={"pack": "other"})
    bad_embeddings = [
        fact.payload.embedding.model_copy(update={"vector_f32le": bytes(512 * 4)}),
        fact.payload.embedding.model_copy(update={"vector_f32le": bytes(513 * 4 - 1)}),
        fact.payload.embedding.model_copy(update={"vector_f32le": np.full(512, np.inf, "<f4").tobytes()}),
        fact.payload.embedding.model_copy(update={"model": other_model}),
    ]
    poison = [
        FakeMessage(
            good.topic,
            0,
            50 + i,
            f"bad-{i}".encode(),
            fact.model_copy(
                update={"payload": fact.payload.model_copy(update={"embedding": e, "face_id": f"bad-{i}"})}
            )
            .model_dump_json()
            .encode(),
            good.headers,
        )
        for i, e in enumerate(bad_embeddings)
    ]
    garbage = FakeMessage(good.topic, 0, 60, b"junk", b"not json", [])
    tombstone = FakeMessage(good.topic, 0, 61, b"gone", None, [])
    pending, letters = PendingChanges(), []  # type: ignore[var-annotated]
    for record in [*poison, garbage, tombstone, good]:
        replica.follower.fold(record, pending, letters)  # type: ignore[arg-type]
    pending.apply(replica.state.index)
    assert len(replica.state.index) == 1
    reasons = [o.envelope.payload.reason for o in letters]
    assert reasons == ["invalid_message"] * 3 + ["model_mismatch", "invalid_message"]
