"""Reading a cut of the embeddings log in bulk with librdkafka (confluent-kafka): the rebuild's
reader. aiokafka tops out near 68k records/s here even doing nothing with them; librdkafka's
``consume(num_messages=...)`` hands over thousands of records per call, fetched by its own
threads meanwhile. Blocking: call it on a worker thread. The live tail stays on aiokafka.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from itertools import chain
from typing import Any, overload

from confluent_kafka import Consumer, KafkaError, TopicPartition

from core.settings import Settings
from streams.bulk_fold import RecordBatch

BATCH = 2_000  # records per consume(): measured here, 1-2k read 25% faster than 20k (cache-resident)
FOLD_RECORDS = 20_000  # records a rebuild folds at once (``next_many``): each step has a cost of its own


def _config(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": f"{settings.topic_prefix}.bulk-reader",  # required; nothing is committed
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",  # a start compacted away: from the log start
        "isolation.level": "read_committed",
        "security.protocol": settings.kafka_security_protocol,
        # Modest fetches: their buffers are reused instead of mapped and faulted in afresh each
        # time (1M records read: 107k page faults instead of 707k, 1.0 s of system time instead
        # of 2.3). Soft limits (KIP-74): a record larger than them still comes, alone.
        "fetch.max.bytes": 8 << 20,
        "max.partition.fetch.bytes": 4 << 20,
        "queued.max.messages.kbytes": 256 << 10,
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


def partitions(settings: Settings, topic: str) -> list[int]:
    """The topic's partitions, from one metadata request (empty if the topic does not exist)."""
    consumer = Consumer(_config(settings))
    try:
        found = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if found is None or found.error is not None:
            return []
        return sorted(found.partitions)
    finally:
        consumer.close()


def cut_ends(settings: Settings, topic: str, partitions: list[int]) -> dict[int, int]:
    """The high-water mark of each partition now: where a cut of the log ends."""
    consumer = Consumer(_config(settings))
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions
        }
    finally:
        consumer.close()


def read_cut(
    settings: Settings, topic: str, starts: dict[int, int], ends: dict[int, int], *, batch: int = BATCH
) -> Iterator[RecordBatch]:
    """The records of each partition from ``starts`` (the next offset to read; at least the log
    start) up to ``ends`` (excluded), in batches; partitions interleave, each in order."""
    pending = {p for p, end in ends.items() if end > starts.get(p, 0)}
    if not pending:
        return
    consumer = Consumer(_config(settings))
    try:
        consumer.assign([TopicPartition(topic, p, max(starts.get(p, 0), 0)) for p in sorted(pending)])
        while pending:
            messages = consumer.consume(num_messages=batch, timeout=1.0)
            if not messages:
                continue
            if any([m.error() for m in messages]):
                messages = _drop_events(messages, pending, topic)
            partitions = [m.partition() for m in messages]
            offsets = [m.offset() for m in messages]
            messages = _within(messages, partitions, offsets, ends, pending)
            if len(messages) != len(partitions):
                partitions = [m.partition() for m in messages]
                offsets = [m.offset() for m in messages]
            if messages:
                yield RecordBatch(
                    [m.key() for m in messages],
                    [m.value() for m in messages],
                    MessageHeaders(messages),
                    partitions,  # type: ignore[arg-type]
                    offsets,  # type: ignore[arg-type]
                )
    finally:
        consumer.close()


class MessageHeaders(Sequence[Any]):
    """Each record's headers, read from librdkafka only when asked for: reading them costs more
    than a record's key and value together, and the bulk fold needs them only for records of
    older formats (and dead letters)."""

    def __init__(self, messages: list[Any]) -> None:
        self.messages = messages

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [m.headers() for m in self.messages[index]]
        return self.messages[index].headers()

    def __len__(self) -> int:
        return len(self.messages)


def _drop_events(messages: list[Any], pending: set[int], topic: str) -> list[Any]:
    """The records, without the end-of-partition events (a partition read to its end is done)."""
    records = []
    for message in messages:
        error = message.error()
        if error is None:
            records.append(message)
        elif error.code() == KafkaError._PARTITION_EOF:
            pending.discard(message.partition())
        else:
            raise RuntimeError(f"reading {topic}[{message.partition()}]: {error}")
    return records


def _within(
    messages: list[Any], partitions: list[Any], offsets: list[Any], ends: dict[int, int], pending: set[int]
) -> list[Any]:
    """The records before the cut; a partition whose last record before the cut is read is done."""
    last: dict[int, int] = dict(zip(partitions, offsets, strict=True))  # each partition's last offset
    beyond = False
    for partition, offset in last.items():
        if offset >= ends[partition] - 1:
            pending.discard(partition)
            beyond = beyond or offset >= ends[partition]
    if not beyond:
        return messages
    return [m for m, p, o in zip(messages, partitions, offsets, strict=True) if o < ends[p]]


class ReadAhead:
    """Iterates ``batches`` on a thread of its own, ``depth`` batches ahead: the next batch is
    read (librdkafka's copies, the record objects) while the caller folds this one, and the
    caller's GIL-free copies into fresh index memory overlap the reading. Close it (or read
    it to its end) to stop the thread."""

    def __init__(self, batches: Iterator[RecordBatch], depth: int = 8) -> None:
        self._queue: queue.Queue[RecordBatch | BaseException | None] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(batches,), name="read-ahead", daemon=True)
        self._thread.start()

    def _run(self, batches: Iterator[RecordBatch]) -> None:
        item: RecordBatch | BaseException | None
        try:
            for item in batches:
                if not self._put(item):
                    return
            item = None
        except BaseException as exc:  # handed to the caller, raised there
            item = exc
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()
        self._put(item)

    def _put(self, item: RecordBatch | BaseException | None) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def next(self) -> RecordBatch | None:
        """The next batch; None at the end. Blocking: call it on a thread from async code."""
        item = self._queue.get()
        if isinstance(item, BaseException):
            self.close()
            raise item
        if item is None:
            self.close()
        return item

    def next_many(self, records: int) -> RecordBatch | None:
        """The next batch joined with those already read after it, up to about ``records``:
        fewer, larger steps for a caller whose every step has a cost of its own."""
        first = self.next()
        if first is None:
            return None
        parts, count = [first], len(first)
        while count < records:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None or isinstance(item, BaseException):
                self._queue.put(item)  # the end (or a failure) comes with the next call
                break
            parts.append(item)
            count += len(item)
        return join(parts)

    def __iter__(self) -> Iterator[RecordBatch]:
        try:
            while (batch := self.next()) is not None:
                yield batch
        finally:
            self.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def join(parts: list[RecordBatch]) -> RecordBatch:
    """Consecutive batches as one."""
    if len(parts) == 1:
        return parts[0]
    return RecordBatch(
        list(chain.from_iterable(part.keys for part in parts)),
        list(chain.from_iterable(part.values for part in parts)),
        _joined_headers([part.headers for part in parts]),
        list(chain.from_iterable(part.partitions for part in parts)),
        list(chain.from_iterable(part.offsets for part in parts)),
    )


def joined(batches: Iterator[RecordBatch], records: int) -> Iterator[RecordBatch]:
    """``batches`` joined into batches of about ``records`` (the last may be smaller)."""
    parts: list[RecordBatch] = []
    count = 0
    for batch in batches:
        parts.append(batch)
        count += len(batch)
        if count >= records:
            yield join(parts)
            parts, count = [], 0
    if parts:
        yield join(parts)


def _joined_headers(parts: list[Sequence[Any]]) -> Sequence[Any]:
    if all(isinstance(part, MessageHeaders) for part in parts):
        return MessageHeaders(list(chain.from_iterable(part.messages for part in parts)))  # type: ignore[attr-defined]
    return list(chain.from_iterable(parts))
