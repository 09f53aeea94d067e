"""The facade's side of Kafka: publish a command, await its correlated replies on our own topic."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from pydantic import BaseModel

from core import tracing
from core.consume import ConsumerStep
from core.errors import ErrorCode, FacestreamError
from core.kafka import encode, envelope_headers, key_bytes, make_consumer, peek_head
from core.rd_producer import ProduceFailed, RdProducer
from core.settings import Settings
from core.topics import ensure_topics, reply_topic_spec
from schemas.envelope import Envelope, EnvelopeHead, Header, envelope_of


@dataclass
class _Awaiting:
    """Replies expected for one correlation id: one per enrolled image, one per shard for an
    identify; a reply that `final` accepts (a failure) ends the wait early.

    Delivery is at least once: a worker or replica that dies before committing does its last
    records again, and answers them again. With `identity`, a reply that names an answer
    already received is dropped, so that a repeat never stands in for one still missing."""

    expected: int
    final: Callable[[bytes], bool] | None = None
    # Replies may announce that more are coming (one per face under the `all` policy).
    expected_from: Callable[[bytes], int] | None = None
    identity: Callable[[bytes], Hashable] | None = None
    replies: list[bytes] = field(default_factory=list)
    seen: set[Hashable] = field(default_factory=set)
    done: asyncio.Future[list[bytes]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def add(self, value: bytes) -> None:
        if self.identity is not None:
            answer = self.identity(value)
            if answer in self.seen:
                return
            self.seen.add(answer)
        self.replies.append(value)
        if self.expected_from is not None:
            self.expected = max(self.expected, self.expected_from(value))
        finished = len(self.replies) >= self.expected or (self.final is not None and self.final(value))
        if finished and not self.done.done():
            self.done.set_result(self.replies)


class KafkaGateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.reply_topic = settings.topics.replies(settings.instance_id)
        self.awaiting: dict[str, _Awaiting] = {}
        self._reader: asyncio.Task[None] | None = None
        self.started = False

    async def start(self) -> None:
        await ensure_topics(self.settings, [reply_topic_spec(self.settings)])
        # Clients bind to the running loop: create them inside it. The producer is librdkafka's
        # (core.rd_producer): a photo out and the audit record are on the answer's path. A
        # record waits for its ack as long as a request waits for its replies, then fails (503):
        # it is not retried behind the caller's back for minutes.
        self.producer = RdProducer(self.settings, delivery_timeout_s=self.settings.reply_timeout_s)
        self.consumer: AIOKafkaConsumer = make_consumer(
            self.settings, group_id=None, auto_offset_reset="latest"
        )
        await self.producer.start()
        await self.consumer.start()
        partition = TopicPartition(self.reply_topic, 0)
        self.consumer.assign([partition])
        await self.consumer.seek_to_end(partition)
        # Resolve the position now: a reply landing before the first fetch must not be skipped.
        await self.consumer.position(partition)
        replies = ConsumerStep(consumer=self.consumer, handle=self._deliver, stage="replies")
        self._reader = asyncio.create_task(replies.run(), name="reply-reader")
        self.started = True

    async def stop(self) -> None:
        if not self.started:
            return
        if self._reader:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self.consumer.stop()
        await self.producer.stop()
        # The reply topic stays: requests still in flight may answer into it after a restart,
        # and its retention clears what nobody reads.

    async def broker_reachable(self) -> bool:
        return await self.producer.reachable(timeout_s=2.0)

    @property
    def in_flight(self) -> int:
        return len(self.awaiting)

    async def request(
        self,
        topic: str,
        commands: list[tuple[str, Envelope[Any]]],
        *,
        correlation_id: str,
        expected: int | None = None,
        final: Callable[[bytes], bool] | None = None,
        expected_from: Callable[[bytes], int] | None = None,
        identity: Callable[[bytes], Hashable] | None = None,
        partial_ok: bool = False,
    ) -> list[bytes]:
        """Publish commands (key, envelope) and wait for `expected` replies (default: one per
        command), distinct by `identity` where given (`_Awaiting`). With `partial_ok`, a timeout
        returns the replies that did arrive, if any."""
        if len(self.awaiting) >= self.settings.max_in_flight:
            # Refuse rather than queue without bound: the caller may retry later.
            raise FacestreamError(
                ErrorCode.UNAVAILABLE, f"{len(self.awaiting)} requests already in flight; retry later"
            )
        awaiting = _Awaiting(
            expected=expected or len(commands), final=final, expected_from=expected_from, identity=identity
        )
        self.awaiting[correlation_id] = awaiting
        try:
            await self.publish(topic, commands)
            return await asyncio.wait_for(
                asyncio.shield(awaiting.done), timeout=self.settings.reply_timeout_s
            )
        except TimeoutError:
            if partial_ok and awaiting.replies:
                return list(awaiting.replies)
            raise FacestreamError(
                ErrorCode.TIMEOUT,
                f"no reply within {self.settings.reply_timeout_s:g}s "
                f"({len(awaiting.replies)} of {awaiting.expected} received)",
            ) from None
        finally:
            self.awaiting.pop(correlation_id, None)

    async def publish(self, topic: str, commands: list[tuple[str, Envelope[Any]]]) -> list[Any]:
        """Send and await the acks; returns their record metadata (partition, offset)."""
        try:
            futures = []
            for key, envelope in commands:
                # Inline: a photo travels as raw bytes (core.image_records), copied once at ~0.1 ms
                # a MB; a hop to a thread and back cost more than that on a busy host.
                value = encode(envelope)
                headers = envelope_headers(
                    envelope, **{Header.REPLY_TO: self.reply_topic, tracing.HEADER: tracing.current.get()}
                )
                futures.append(await self.producer.send(topic, value, key_bytes(key), headers=headers))
            return list(await asyncio.gather(*futures))
        except ProduceFailed as exc:
            raise FacestreamError(ErrorCode.UNAVAILABLE, f"broker unavailable: {exc}") from exc

    async def _deliver(self, records: list[ConsumerRecord[bytes, bytes]]) -> list[object]:
        """Each reply to whoever awaits its correlation id; nothing to produce."""
        for record in records:
            head = peek_head(record.value)
            if head is not None and head.correlation_id in self.awaiting:
                self.awaiting[head.correlation_id].add(record.value)
        return []


def parse_reply(value: bytes, *types: type[BaseModel]) -> Envelope[Any]:
    """A reply as the envelope of whichever of `types` its `type` names."""
    head = EnvelopeHead.model_validate_json(value)
    for payload_type in types:
        if head.type == payload_type.__name__:
            return envelope_of(payload_type).model_validate_json(value)
    raise FacestreamError(ErrorCode.INTERNAL, f"unexpected reply type {head.type}")
