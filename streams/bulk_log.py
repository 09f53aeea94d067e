"""Reading a cut of the embeddings log in bulk with librdkafka: the rebuild's reader. aiokafka
tops out near 68k records/s here even doing nothing with them; librdkafka hands over thousands
of records per call, fetched by its own threads meanwhile, and ``streams._packed_consumer``
packs them into one buffer per batch (confluent-kafka's record objects cost more than the rest
of reading: one partition of 333k records read with 1.6-2.2 us of CPU per record, against
2.8-3.2 us with confluent-kafka). Metadata lookups use confluent-kafka. Blocking: call it on
a worker thread. The live tail stays on aiokafka.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from itertools import chain
from typing import Any

import numpy as np
from confluent_kafka import Consumer, TopicPartition

from core import embedding_records
from core.errors import ErrorCode, FacestreamError
from core.kafka import librdkafka_client_config
from core.settings import Settings
from streams._packed_consumer import PackedConsumer
from streams.bulk_fold import RecordBatch
from streams.packed_records import PackedHeaders, PackedValues, join_packed

BATCH = 2_000  # records per consume(): measured here, 1-2k read 25% faster than 20k (cache-resident)
FOLD_RECORDS = 20_000  # records a rebuild folds at once (``next_many``): each step has a cost of its own


def librdkafka_config(settings: Settings) -> dict[str, str]:
    """The bulk reader's librdkafka settings, as the strings it parses."""
    return {
        **librdkafka_client_config(settings),
        "group.id": f"{settings.topic_prefix}.bulk-reader",  # required; nothing is committed
        "enable.auto.commit": "false",
        "enable.partition.eof": "true",
        "auto.offset.reset": "earliest",  # a start compacted away: from the log start
        "isolation.level": "read_committed",
        # Modest fetches: their buffers are reused instead of mapped and faulted in afresh each
        # time (1M records read: 107k page faults instead of 707k, 1.0 s of system time instead
        # of 2.3). Soft limits (KIP-74): a record larger than them still comes, alone.
        "fetch.max.bytes": str(8 << 20),
        "max.partition.fetch.bytes": str(4 << 20),
        "queued.max.messages.kbytes": str(256 << 10),
    }


def partitions(settings: Settings, topic: str, *, attempts: int = 60, pause_s: float = 0.5) -> list[int]:
    """The topic's partitions, from one metadata request; a topic not there yet is asked for
    again ``attempts`` times, then UNAVAILABLE (what to run)."""
    consumer = Consumer(librdkafka_config(settings))
    try:
        for attempt in range(attempts):
            found = consumer.list_topics(topic, timeout=10).topics.get(topic)
            if found is not None and found.error is None and found.partitions:
                return sorted(found.partitions)
            if attempt + 1 < attempts:
                time.sleep(pause_s)
    finally:
        consumer.close()
    raise FacestreamError(
        ErrorCode.UNAVAILABLE, f"topic {topic} does not exist: run `facestream topics create`"
    )


def cut_ends(settings: Settings, topic: str, partitions: list[int]) -> dict[int, int]:
    """The high-water mark of each partition now: where a cut of the log ends."""
    consumer = Consumer(librdkafka_config(settings))
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
    pending = {p: end for p, end in ends.items() if end > starts.get(p, 0)}
    if not pending:
        return
    # FSE2 records carry their ids in their value: the fold never reads their headers. A
    # restore's dead letter of a poison FSE2 record therefore has none (its key, value and
    # offsets are kept; the projector's dead letter of the same record has them).
    config = librdkafka_config(settings)
    consumer = PackedConsumer(config, topic, starts, pending, bare_prefix=embedding_records.MAGIC)
    try:
        while (chunk := consumer.read(batch)) is not None:
            yield _unpacked(chunk)
    finally:
        consumer.close()


def _unpacked(chunk: tuple[Any, ...]) -> RecordBatch:
    keys, values, starts, lengths, partitions, offsets, headers, header_starts, header_lengths = chunk
    return RecordBatch(
        keys,
        PackedValues(values, _int64(starts), _int64(lengths)),
        PackedHeaders(headers, _int64(header_starts), _int64(header_lengths)),
        np.frombuffer(partitions, dtype=np.int32).tolist(),
        _int64(offsets).tolist(),
    )


def _int64(packed: bytes) -> np.ndarray:
    return np.frombuffer(packed, dtype=np.int64)


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
        PackedValues(*join_packed([part.values for part in parts])),
        _joined_headers([part.headers for part in parts]),
        list(chain.from_iterable(part.partitions for part in parts)),
        list(chain.from_iterable(part.offsets for part in parts)),
    )


def _joined_headers(parts: list[Any]) -> Any:
    if all(isinstance(part, PackedHeaders) for part in parts):
        return PackedHeaders(*join_packed(parts))
    return list(chain.from_iterable(parts))


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
