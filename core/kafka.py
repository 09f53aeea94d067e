"""Kafka plumbing shared by every process: client factories, envelope codec, headers."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterable
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord
from pydantic import BaseModel, ValidationError

from core import embedding_records, image_records
from core.errors import ErrorCode, FacestreamError
from core.settings import Settings
from schemas.envelope import Envelope, EnvelopeHead, Header, envelope_of
from schemas.events import FaceEmbedded

P = TypeVar("P", bound=BaseModel)

RawHeaders = Iterable[tuple[str, bytes]]


def client_options(settings: Settings) -> dict[str, Any]:
    """Bootstrap and security options shared by every Kafka client of the project."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(
            cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        )
        if settings.kafka_ssl_certfile:
            context.load_cert_chain(
                str(settings.kafka_ssl_certfile),
                str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
            )
        options["ssl_context"] = context
    if settings.kafka_security_protocol.startswith("SASL"):
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=settings.kafka_sasl_password.get_secret_value(),
        )
    return options


def librdkafka_client_config(settings: Settings) -> dict[str, str]:
    """Bootstrap and security for a librdkafka client (confluent-kafka), as the strings it parses."""
    config: dict[str, str] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "security.protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol.startswith("SASL"):
        config |= {
            "sasl.mechanism": settings.kafka_sasl_mechanism,
            "sasl.username": settings.kafka_sasl_username,
            "sasl.password": settings.kafka_sasl_password.get_secret_value(),
        }
    for key, path in (
        ("ssl.ca.location", settings.kafka_ssl_cafile),
        ("ssl.certificate.location", settings.kafka_ssl_certfile),
        ("ssl.key.location", settings.kafka_ssl_keyfile),
    ):
        if path is not None:
            config[key] = str(path)
    return config


def make_admin(settings: Settings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**client_options(settings))


def make_producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    """Idempotent, acks=all: a retried send never duplicates a record within a partition. No
    linger by default: requests, replies and the audit record are on a client's critical path."""
    options: dict[str, Any] = {
        **client_options(settings),
        "enable_idempotence": True,
        "acks": "all",
        "max_request_size": settings.max_message_bytes,
        "linger_ms": settings.kafka_linger_ms,
        "request_timeout_ms": 30_000,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


def make_consumer(
    settings: Settings, *topics: str, group_id: str | None, **overrides: Any
) -> AIOKafkaConsumer:
    """Manual commits only: offsets move after the output of a record is acknowledged."""
    options: dict[str, Any] = {
        **client_options(settings),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_partition_fetch_bytes": settings.max_message_bytes,
        "fetch_max_bytes": settings.max_message_bytes * 2,
        "isolation_level": "read_committed",
        "session_timeout_ms": int(settings.kafka_session_timeout_s * 1000),
        "heartbeat_interval_ms": int(settings.kafka_session_timeout_s * 1000 / 3),
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)


def encode(envelope: Envelope[Any]) -> bytes:
    """JSON, except the hot records: embeddings (core.embedding_records) and the commands
    that carry a photo (core.image_records)."""
    if isinstance(envelope.payload, FaceEmbedded):
        return embedding_records.encode(envelope)
    if image_records.carries_image(envelope):
        return image_records.encode(envelope)
    return envelope.model_dump_json().encode()


def decode(value: bytes | None, payload_type: type[P]) -> Envelope[P]:
    """Parse one record; anything malformed is an `invalid_message` (dead-letter material)."""
    if value is None:
        raise FacestreamError(ErrorCode.INVALID_MESSAGE, "record has no value")
    try:
        if embedding_records.is_binary(value):
            if payload_type is not FaceEmbedded:
                raise FacestreamError(
                    ErrorCode.INVALID_MESSAGE, f"expected {payload_type.__name__}, got a binary FaceEmbedded"
                )
            return embedding_records.decode(value)  # type: ignore[return-value]
        if image_records.is_binary(value):
            envelope = image_records.decode(value, payload_type)
        else:
            envelope = envelope_of(payload_type).model_validate_json(value)
    except ValidationError as exc:
        raise FacestreamError(ErrorCode.INVALID_MESSAGE, _short(exc)) from exc
    if envelope.type != payload_type.__name__:
        raise FacestreamError(
            ErrorCode.INVALID_MESSAGE, f"expected {payload_type.__name__}, got {envelope.type}"
        )
    return envelope


def peek_head(value: bytes | None) -> EnvelopeHead | None:
    """The envelope's routing fields, or None when the record is not an envelope at all."""
    if value is None:
        return None
    try:
        if embedding_records.is_binary(value):
            return EnvelopeHead.model_validate(embedding_records.metadata(value))
        if image_records.is_binary(value):
            return EnvelopeHead.model_validate(image_records.metadata(value)[0])
        return EnvelopeHead.model_validate_json(value)
    except (ValidationError, FacestreamError):
        return None


def envelope_headers(envelope: Envelope[Any], **extra: str | None) -> list[tuple[str, bytes]]:
    headers = {
        Header.EVENT_TYPE: envelope.type,
        Header.SCHEMA_VERSION: str(envelope.schema_version),
        Header.CORRELATION_ID: envelope.correlation_id,
        **{k: v for k, v in extra.items() if v is not None},
    }
    return [(k, v.encode()) for k, v in headers.items()]


def header_map(headers: RawHeaders | None) -> dict[str, str]:
    return {k: v.decode(errors="replace") for k, v in (headers or ())}


def event_type(record: Any) -> str | None:
    """A consumed record's envelope type: from its header, else from its value; None for
    anything that is not an envelope."""
    kind = header_map(record.headers).get(Header.EVENT_TYPE)
    if kind is None:
        head = peek_head(record.value)
        kind = head.type if head is not None else None
    return kind


def key_bytes(key: str | None) -> bytes | None:
    return key.encode() if key is not None else None


def key_text(key: bytes | None) -> str:
    """A record's key as the id it names ("" for none); one that is not UTF-8 names nothing."""
    try:
        text = (key or b"").decode()
    except UnicodeDecodeError as exc:
        raise FacestreamError(ErrorCode.INVALID_MESSAGE, f"record key is not UTF-8: {exc.reason}") from exc
    return checked_id(text)


def checked_id(text: str) -> str:
    """An id read from a record (its key, its value, its headers). The bulk paths join ids with
    NULs: one holding a NUL names nothing, and its record is dead-letter material."""
    if "\x00" in text:
        raise FacestreamError(ErrorCode.INVALID_MESSAGE, f"an id holds a NUL byte: {text!r}")
    return text


def _short(exc: ValidationError) -> str:
    first = exc.errors()[0]
    location = ".".join(str(part) for part in first.get("loc", ()))
    return f"{location}: {first.get('msg', 'invalid')}" if location else str(first.get("msg"))


async def partitions_of(consumer: AIOKafkaConsumer, topic: str, *, attempts: int = 60) -> list[int]:
    """The topic's partitions, waiting for metadata (a consumer without a subscription has none)."""
    for _ in range(attempts):
        found = consumer.partitions_for_topic(topic)
        if found:
            return sorted(found)
        # aiokafka has no public metadata refresh.
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.5)
    raise FacestreamError(
        ErrorCode.UNAVAILABLE, f"topic {topic} does not exist: run `facestream topics create`"
    )


class LogCut:
    """Reads every partition of a topic from its beginning up to the end offsets seen when the
    read starts: a consistent cut of a compacted log, whatever is produced meanwhile."""

    def __init__(self, consumer: AIOKafkaConsumer, topic: str) -> None:
        self.consumer = consumer
        self.topic = topic
        self.ends: dict[int, int] = {}

    async def batches(self, *, max_records: int) -> AsyncIterator[list[ConsumerRecord[bytes, bytes]]]:
        partitions = [TopicPartition(self.topic, p) for p in await partitions_of(self.consumer, self.topic)]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_beginning(*partitions)
        ends = await self.consumer.end_offsets(partitions)
        self.ends = {tp.partition: offset for tp, offset in ends.items()}
        positions = {tp: await self.consumer.position(tp) for tp in partitions}
        while any(positions[tp] < ends[tp] for tp in partitions):
            fetched = await self.consumer.getmany(timeout_ms=1000, max_records=max_records)
            # Records past the cut are left to whoever tails the log afterwards.
            yield [r for tp, records in fetched.items() for r in records if r.offset < ends[tp]]
            for tp in partitions:
                positions[tp] = min(await self.consumer.position(tp), ends[tp])
