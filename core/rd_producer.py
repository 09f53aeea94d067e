"""librdkafka's producer (confluent-kafka) behind aiokafka's asyncio `send`.

Every record on an identify's or an enroll's way to its answer goes out through it: the
facade's photo and audit record, the workers' queries, embeddings and replies, the replicas'
answers. Why not aiokafka there: in one uvloop process on this 2-core host, a 150 KB record
produced -> consumed (by aiokafka) took 3.05 ms p50 from librdkafka's producer against 4.59 ms
from aiokafka's, a 200-byte one 2.49 against 3.17, and an acks=all round trip 1.2 against
1.6 ms (`bench/hops.py` shows where those hops sit in an identify). Building and framing the
request happens in librdkafka's C threads instead of the event loop.

`send` enqueues and returns a future of the ack, as aiokafka's does: sends in a row are
pipelined and the caller awaits them together. Deliveries are reported by a thread of ours
that serves librdkafka's callbacks (`poll`) and hands each result to the loop.

A fatal error (the idempotent producer can no longer keep its guarantees, e.g. the broker lost
records it had acknowledged: an out-of-order sequence) leaves a librdkafka producer refusing
every record from then on. That thread then puts a new producer in its place: the records the
old one held fail as `ProduceFailed`, so their callers send them again (a worker retries its
batch, the facade answers 503), and the next records go out through the new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from core.kafka import RawHeaders, librdkafka_client_config
from core.logging import get_logger
from core.settings import Settings

log = get_logger(__name__)

POLL_S = 0.1  # how long the delivery thread waits for an event before looking at `stop`
QUEUE_FULL_PAUSE_S = 0.005  # librdkafka's local queue is full: let deliveries drain
FATAL_DRAIN_S = 10.0  # a producer ended by a fatal error fails its records well within this


class ProduceFailed(Exception):
    """A record was not acknowledged: the broker was away or slow until the record's delivery
    timeout. Transient: the same record may be sent again."""


class RecordRefused(ProduceFailed):
    """A record no broker will ever take (too large, malformed): sending it again cannot help."""


# librdkafka's codes for records refused for what they are, not for the broker's state: as
# aiokafka's MessageSizeTooLarge, RecordListTooLarge and RecordTooLarge (`core.batch_guard`).
_REFUSED_CODES = frozenset(
    {KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE, KafkaError.INVALID_RECORD}
)


@dataclass(frozen=True)
class Delivered:
    topic: str
    partition: int
    offset: int


def producer_config(settings: Settings, delivery_timeout_s: float) -> dict[str, str]:
    """Idempotent, acks=all, as every producer of the project; no linger by default."""
    return {
        **librdkafka_client_config(settings),
        "enable.idempotence": "true",
        # A key's partition as aiokafka's and Java's producers pick it (murmur2), not
        # librdkafka's default (CRC32): the eraser's tombstone must land on the partition of
        # the embedding it erases, and a person's commands from any client on one partition.
        "partitioner": "murmur2_random",
        "acks": "all",
        "linger.ms": str(settings.kafka_linger_ms),
        "message.max.bytes": str(settings.max_message_bytes),
        # librdkafka retries a record (in order, without duplicates) until this; then its future
        # fails with ProduceFailed and the caller decides: the facade answers 503, a stream
        # processor retries its batch (`core.batch_guard`).
        "message.timeout.ms": str(int(delivery_timeout_s * 1000)),
    }


class RdProducer:
    def __init__(self, settings: Settings, *, delivery_timeout_s: float) -> None:
        self.config = producer_config(settings, delivery_timeout_s)
        self._producer: Producer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._deliveries: threading.Thread | None = None
        self._fatal: KafkaError | None = None
        self.replaced = 0  # producers put in place of one a fatal error ended: the generation

    async def start(self, timeout_s: float = 10.0) -> None:
        """Connects, and fails like aiokafka's start does when no broker answers."""
        self._loop = asyncio.get_running_loop()
        self._producer = self._new_producer()
        self._stop.clear()
        self._deliveries = threading.Thread(target=self._serve, name="rdkafka-deliveries", daemon=True)
        self._deliveries.start()
        if not await self.reachable(timeout_s):
            await self.stop()
            raise ProduceFailed(f"no broker answered within {timeout_s:g}s")

    async def stop(self, timeout_s: float = 10.0) -> None:
        """What is in flight is acknowledged (or fails) first, for up to `timeout_s`."""
        producer = self._producer
        if producer is None:
            return
        await asyncio.to_thread(producer.flush, timeout_s)
        self._stop.set()
        if self._deliveries is not None:
            await asyncio.to_thread(self._deliveries.join)
        self._producer = None

    async def reachable(self, timeout_s: float = 2.0) -> bool:
        """The cluster's metadata arrives within `timeout_s`."""
        producer = self._producer
        if producer is None:
            return False
        try:
            await asyncio.to_thread(producer.list_topics, timeout=timeout_s)
        except KafkaException:
            return False
        return True

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        *,
        headers: RawHeaders | None = None,
    ) -> asyncio.Future[Delivered]:
        """Enqueues the record (a null value: a tombstone); the future is its acknowledgement."""
        if self._producer is None or self._loop is None:
            raise ProduceFailed("the producer is not started")
        acked: asyncio.Future[Delivered] = self._loop.create_future()
        loop = self._loop

        def delivered(error: KafkaError | None, message: Message) -> None:
            # A closed loop (RuntimeError): nobody awaits the ack any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, acked, error, message)

        while True:
            try:
                self._producer.produce(topic, value, key, headers=list(headers or ()), on_delivery=delivered)
                return acked
            except BufferError:
                await asyncio.sleep(QUEUE_FULL_PAUSE_S)
            except KafkaException as exc:
                raise _failure(exc.args[0] if exc.args else None, str(exc)) from exc

    def _new_producer(self) -> Producer:
        generation = self.replaced
        return Producer({**self.config, "error_cb": lambda error: self._on_error(error, generation)})

    def _on_error(self, error: KafkaError, generation: int) -> None:
        # Called by librdkafka inside `poll` (or a replaced producer's last `flush`), on the
        # deliveries thread. Only the producer in place counts: one already replaced may still
        # report while it drains. The other errors (a broker down, a timeout) are librdkafka's
        # to retry; a record that stays undelivered fails.
        if error.fatal() and generation == self.replaced:
            self._fatal = error

    def _serve(self) -> None:
        while (producer := self._producer) is not None and not self._stop.is_set():
            producer.poll(POLL_S)
            if self._fatal is not None:
                self._replace(producer, self._fatal)

    def _replace(self, failed: Producer, error: KafkaError) -> None:
        log.error("producer_fatal", error=error.str(), code=error.code())
        self.replaced += 1
        self._producer = self._new_producer()  # a send from now on goes to the new one
        self._fatal = None
        # What the failed one still holds fails through its callbacks (ProduceFailed); none is
        # left unsettled: an awaited ack that never comes would hang its caller.
        failed.purge()
        failed.flush(FATAL_DRAIN_S)


def _settle(acked: asyncio.Future[Delivered], error: KafkaError | None, message: Any) -> None:
    if acked.done():
        return
    if error is not None:
        acked.set_exception(_failure(error, error.str()))
    else:
        acked.set_result(Delivered(message.topic(), message.partition(), message.offset()))


def _failure(error: KafkaError | None, text: str) -> ProduceFailed:
    refused = isinstance(error, KafkaError) and error.code() in _REFUSED_CODES
    return (RecordRefused if refused else ProduceFailed)(text)
