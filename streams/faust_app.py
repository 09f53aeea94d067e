"""A faust App configured from Settings for the image-processing workers."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import faust

from core.batch_guard import run_guarded
from core.errors import FacestreamError
from core.gallery_catalog import GalleryCatalog
from core.kafka import client_options, header_map
from core.logging import get_logger
from core.settings import Settings
from schemas.envelope import Header
from streams.handlers.dead_letter import dead_letter_for
from streams.producing import Producer, send_all, stream_producer
from streams.ready_batches import ready_batches

log = get_logger(__name__)


def make_faust_app(settings: Settings, name: str) -> faust.App:
    security = client_options(settings)
    credentials: faust.SASLCredentials | faust.SSLCredentials | None = None
    if settings.kafka_security_protocol.startswith("SASL"):
        credentials = faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.get_secret_value(),
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=security.get("ssl_context"),
        )
    elif "ssl_context" in security:
        credentials = faust.SSLCredentials(security["ssl_context"])
    datadir = settings.index_dir.parent / "faust" / f"{settings.topic_prefix}-{name}"
    datadir.parent.mkdir(parents=True, exist_ok=True)  # faust creates only the last level
    return faust.App(
        f"{settings.topic_prefix}-{name}",
        broker=f"kafka://{settings.kafka_bootstrap}",
        broker_credentials=credentials,
        # faust would otherwise open a web server on 0.0.0.0:6066.
        web_enabled=False,
        store="memory://",
        # faust keeps a data folder per app; beside the index snapshots, not in the cwd.
        datadir=str(datadir),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        producer_acks=-1,
        producer_max_request_size=settings.max_message_bytes,
        consumer_max_fetch_size=settings.max_message_bytes,
        # Commands carry whole photos: checking a 2.4 MB record's CRC in aiokafka's software
        # CRC-32C took ~3 ms of the worker's hop. The broker checked it when it was produced,
        # a photo garbled after that fails to decode (a dead letter), and librdkafka does not
        # check consumed CRCs by default either.
        broker_check_crcs=False,
        consumer_auto_offset_reset="earliest",
        broker_max_poll_records=settings.batch_max_size * 2,
        # Inference on a large batch can take seconds on CPU: give it room before a rebalance.
        broker_max_poll_interval=300.0,
        # A killed worker's partitions move to a live one after this, not faust's default 60 s.
        broker_session_timeout=settings.kafka_session_timeout_s,
        broker_heartbeat_interval=settings.kafka_session_timeout_s / 3,
        # Static membership (KIP-345): a restarted worker with the same instance id takes its
        # partitions back at once instead of waiting out the session of its dead self.
        consumer_group_instance_id=(
            f"{settings.topic_prefix}-{name}-{settings.instance_id}" if settings.static_membership else None
        ),
        stream_buffer_maxsize=settings.batch_max_size * 4,
        # What a killed worker processed but had not committed is done again by its successor
        # (at-least-once): commit often so that backlog stays a fraction of a second.
        broker_commit_interval=0.5,
    )


class Worker(Protocol):
    async def process(self, messages: Sequence[Any]) -> None: ...

    async def warm(self) -> None: ...


def worker_app(
    settings: Settings,
    *,
    stage: str,
    topic: str,
    build: Callable[[Producer, GalleryCatalog], Worker],
) -> faust.App:
    """A stream worker's faust app: one micro-batch agent on `topic`, running the worker `build`
    makes from the producer its outputs go out through and the catalog it looks galleries up in."""
    app = make_faust_app(settings, stage)
    producer = stream_producer(settings)
    worker = build(producer, GalleryCatalog(settings))
    micro_batch_agent(app, settings, topic=topic, stage=stage, worker=worker, producer=producer)
    return app


def micro_batch_agent(
    app: faust.App,
    settings: Settings,
    *,
    topic: str,
    stage: str,
    worker: Worker,
    producer: Producer,
) -> None:
    """One faust agent on `topic` that hands the worker's `process` micro-batches of raw records
    (a lone record at once, what is waiting behind it as one batch: `streams.ready_batches`),
    and acknowledges a batch (its offsets may then be committed) only once it was processed or
    dead-lettered: never on a failure (`core.batch_guard`). The worker's outputs and the dead
    letters go out through `producer`, which runs as long as the agent. The worker's
    `warm` is awaited when the agent starts, before its first batch."""
    source = app.topic(topic, value_serializer="raw", key_serializer="raw")

    async def dead_letters(messages: Sequence[Any], error: FacestreamError) -> None:
        await send_all(
            producer, [dead_letter_for(m, error, stage=stage, topics=settings.topics) for m in messages]
        )

    async def agent(stream: faust.StreamT[bytes]) -> None:
        await producer.start()
        try:
            await worker.warm()
            # Acks are ours (`noack`): a batch is acknowledged once processed or dead-lettered.
            # Not faust's `take(max, within)`: it waits out its window even for a lone record.
            batches = ready_batches(
                stream.noack().events(),  # type: ignore[attr-defined]
                waiting=lambda: not stream.channel.queue.empty(),  # type: ignore[attr-defined]
                max_size=settings.batch_max_size,
                linger_s=settings.batch_max_wait_s,
            )
            async for events in batches:
                messages = [event.message for event in events]
                log_taken(stage, messages)
                await run_guarded(worker.process, messages, stage=stage, dead_letters=dead_letters)
                for event in events:
                    await stream.ack(event)
        finally:
            await producer.stop()

    app.agent(source, name=f"{settings.topic_prefix}-{stage}")(agent)


def log_taken(stage: str, messages: Sequence[Any]) -> None:
    """A batch handed to its stage: how long each record waited since its producer sent it
    (CreateTime), by correlation id. bench/hops splits a request's way to the worker with it."""
    now = time.time()
    log.info(
        "batch_taken",
        stage=stage,
        size=len(messages),
        correlation_ids=[header_map(m.headers).get(Header.CORRELATION_ID) for m in messages],
        waited_ms=[round((now - m.timestamp) * 1000, 1) if m.timestamp else None for m in messages],
    )
