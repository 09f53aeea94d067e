"""Sending handler outputs and waiting for the broker's acknowledgement before anything commits."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from functools import partial
from typing import Any, Protocol

from core.batch_guard import BROKER_ERRORS
from core.consume import ConsumerStep, Handle, Source
from core.kafka import encode, envelope_headers, key_bytes
from core.rd_producer import RdProducer
from core.settings import Settings, TopicNames
from streams.handlers.dead_letter import dead_letter_for
from streams.handlers.output import Output


class Sender(Protocol):
    """aiokafka's producer shape: `send` enqueues and returns a future of the record metadata."""

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        *,
        headers: Any = None,
    ) -> asyncio.Future[Any]: ...


class Producer(Sender, Protocol):
    """A sender with a lifetime: started before its first record, stopped (in-flight records
    acknowledged first) after its last."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


# A stream processor's record not acknowledged within this fails its batch, which
# `core.batch_guard` retries for as long as the broker is away (librdkafka retries it in order,
# without duplicates, until then).
STREAM_DELIVERY_TIMEOUT_S = 60.0


def stream_producer(settings: Settings) -> RdProducer:
    """The producer of the workers and the replicas: librdkafka's, as the facade's
    (`core.rd_producer` says why), since their records are on the way to an answer too."""
    return RdProducer(settings, delivery_timeout_s=STREAM_DELIVERY_TIMEOUT_S)


async def send_tombstones(sender: Sender, topic: str, keys: Sequence[str]) -> list[Any]:
    """A null value under each key of a compacted topic; every ack awaited."""
    futures = [await sender.send(topic, None, key_bytes(key)) for key in keys]
    return list(await asyncio.gather(*futures))


async def send_all(sender: Sender, outputs: Sequence[Output]) -> list[Any]:
    """Send every output, then await every ack: the caller may only commit after this returns."""
    futures = [
        await sender.send(
            out.topic,
            encode(out.envelope),
            key_bytes(out.key),
            headers=envelope_headers(out.envelope, **out.headers),
        )
        for out in outputs
    ]
    return list(await asyncio.gather(*futures))


def producing_step(
    consumer: Source,
    sender: Sender,
    handle: Handle[Output],
    *,
    stage: str,
    topics: TopicNames,
    commit: bool = False,
    max_records: int = 500,
    transient: tuple[type[BaseException], ...] = BROKER_ERRORS,
) -> ConsumerStep[Output]:
    """A consumer step whose outputs, and dead letters of the records it cannot handle, go
    out through `sender`."""
    return ConsumerStep(
        consumer=consumer,
        handle=handle,
        stage=stage,
        produce=partial(send_all, sender),
        dead_letter=partial(dead_letter_for, stage=stage, topics=topics),
        commit=commit,
        max_records=max_records,
        transient=transient,
    )
