"""A record that cannot be processed becomes a DeadLetter fact, and the partition moves on."""

from __future__ import annotations

from typing import Any

from core.errors import FacestreamError
from core.kafka import header_map
from core.settings import TopicNames
from schemas.envelope import Envelope, new_id
from schemas.events import DeadLetter
from streams.handlers.output import Output

# Enough of the original to diagnose it; the whole image is not worth keeping twice.
MAX_KEPT_BYTES = 64 * 1024


def dead_letter(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: dict[str, str],
    error: FacestreamError,
    stage: str,
    topics: TopicNames,
) -> Output:
    letter = DeadLetter(
        topic=topic,
        partition=partition,
        offset=offset,
        key=key.decode(errors="replace") if key is not None else None,
        reason=error.code.value,
        message=error.message,
        stage=stage,
        value=(value or b"")[:MAX_KEPT_BYTES],
        headers=headers,
    )
    correlation_id = headers.get("correlation_id") or new_id()
    return Output(
        topic=topics.dead_letter,
        key=f"{topic}:{partition}:{offset}",
        envelope=Envelope.wrap(letter, correlation_id=correlation_id),
    )


def dead_letter_for(record: Any, error: FacestreamError, *, stage: str, topics: TopicNames) -> Output:
    """The dead letter of a consumed record (aiokafka's ConsumerRecord or faust's Message)."""
    return dead_letter(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        headers=header_map(record.headers),
        error=error,
        stage=stage,
        topics=topics,
    )
