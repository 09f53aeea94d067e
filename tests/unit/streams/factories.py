"""Factories for the stream tests: Kafka-shaped messages, commands and an in-memory sender."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from core.kafka import decode, encode, header_map
from core.metrics import Metrics
from core.settings import Settings
from schemas.envelope import Envelope, Header, new_id
from schemas.events import EnrollFace, IdentifyFace
from streams.reply_topics import ReplyTopics

REPLY_TOPIC = "facestream.replies.v1.api-1"


def settings(**overrides: Any) -> Settings:
    fields: dict[str, Any] = {"instance_id": "api-1", "replica_id": "replica-1"}
    fields.update(overrides)
    return Settings(_env_file=None, **fields)  # type: ignore[call-arg]


def metrics() -> Metrics:
    return Metrics.create()


@dataclass(frozen=True)
class RecordMetadata:
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class FakeMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass(frozen=True)
class Sent:
    topic: str
    value: bytes | None
    key: bytes | None
    headers: list[tuple[str, bytes]]
    partition: int
    offset: int

    @property
    def header_map(self) -> dict[str, str]:
        return header_map(self.headers)

    @property
    def key_str(self) -> str | None:
        return self.key.decode() if self.key is not None else None

    def payload(self, payload_type: type[Any]) -> Any:
        return decode(self.value, payload_type).payload

    def envelope(self, payload_type: type[Any]) -> Envelope[Any]:
        return decode(self.value, payload_type)


class FakeSender:
    """aiokafka's producer shape: `send` returns an already-resolved future of the metadata."""

    def __init__(self, partitions: int = 3) -> None:
        self.partitions = partitions
        self.sent: list[Sent] = []
        self._offsets: dict[tuple[str, int], int] = {}

    async def send(
        self, topic: str, value: bytes | None = None, key: bytes | None = None, *, headers: Any = None
    ) -> asyncio.Future[RecordMetadata]:
        partition = (sum(key) if key else 0) % self.partitions
        offset = self._offsets.get((topic, partition), 0)
        self._offsets[(topic, partition)] = offset + 1
        self.sent.append(Sent(topic, value, key, list(headers or []), partition, offset))
        future: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        future.set_result(RecordMetadata(topic, partition, offset))
        return future

    def on(self, topic: str) -> list[Sent]:
        return [s for s in self.sent if s.topic == topic]


class MessageFactory:
    """Records of one topic-partition with increasing offsets."""

    def __init__(self, topic: str, partition: int = 0) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = 100

    def raw(
        self, value: bytes | None, *, key: bytes | None = None, headers: dict[str, str] | None = None
    ) -> FakeMessage:
        self.offset += 1
        return FakeMessage(
            topic=self.topic,
            partition=self.partition,
            offset=self.offset,
            key=key,
            value=value,
            headers=[(k, v.encode()) for k, v in (headers or {}).items()],
        )

    def envelope(
        self, envelope: Envelope[Any], *, key: str | None = None, reply_to: str | None = REPLY_TOPIC
    ) -> FakeMessage:
        headers = {Header.CORRELATION_ID: envelope.correlation_id}
        if reply_to is not None:
            headers[Header.REPLY_TO] = reply_to
        return self.raw(encode(envelope), key=key.encode() if key else None, headers=headers)


def enroll_command(
    person_id: str = "alice", image: bytes = b"FAKE:alice:1", **overrides: Any
) -> Envelope[EnrollFace]:
    fields: dict[str, Any] = {
        "enrollment_id": "enr-1",
        "person_id": person_id,
        "filename": "photo.jpg",
        "image": image,
    }
    fields.update(overrides)
    return Envelope.wrap(EnrollFace(**fields), correlation_id=fields["enrollment_id"])


def identify_command(image: bytes = b"FAKE:alice:9", **overrides: Any) -> Envelope[IdentifyFace]:
    fields: dict[str, Any] = {"request_id": new_id(), "image": image}
    fields.update(overrides)
    return Envelope.wrap(IdentifyFace(**fields), correlation_id=fields["request_id"])


def known_reply_topics(config: Settings, *existing: str) -> ReplyTopics:
    """Reply-topic checks without a broker: every reply topic exists unless `existing` narrows it."""

    async def lister(_: Settings) -> set[str]:
        if existing:
            return set(existing)
        return _EveryTopic()

    return ReplyTopics(config, metrics(), lister=lister)


class _EveryTopic(set[str]):
    def __contains__(self, _: object) -> bool:
        return True
