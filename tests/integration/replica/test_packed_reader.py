"""The rebuild's native reader (``streams._packed_consumer`` through ``bulk_log.read_cut``)
against the real broker: every record of the cut, as written (a FSE2 record without the headers
it needs none of), and nothing past it."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from core import embedding_records
from core.errors import ErrorCode, FacestreamError
from core.settings import Settings
from streams._packed_consumer import PackedConsumer
from streams.bulk_log import cut_ends, join, librdkafka_config, partitions, read_cut
from tests.fixtures.topics import scratch_topic

pytestmark = [pytest.mark.kafka]

Written = tuple[int, bytes | None, bytes | None, list[tuple[str, bytes | None]] | None]


@pytest.fixture
async def topic(tmp_path: Path) -> AsyncIterator[tuple[Settings, str]]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        kafka_bootstrap=os.environ.get("FACESTREAM_KAFKA_BOOTSTRAP", "127.0.0.1:19092"),
        topic_prefix=f"testpacked{uuid.uuid4().hex[:6]}",
        index_dir=tmp_path,
    )
    async with scratch_topic(settings.kafka_bootstrap, f"{settings.topic_prefix}.records", 2) as name:
        yield settings, name


async def _write(settings: Settings, topic: str) -> dict[int, list[Written]]:
    """Records of every shape the log may hold, on two partitions; what each partition holds."""
    shapes: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]] | None]] = [
        (b"k", b"value", [("event_type", b"FaceEmbedded"), ("empty", b""), ("none", None)]),
        (None, b"no key", None),
        (b"gone", None, None),  # a tombstone
        (b"e", b"", [("\u00e9", b"\x00\xff")]),  # an empty value, a header name beyond ASCII
        (b"big", bytes(range(256)) * 40, None),
        (b"fse2", embedding_records.MAGIC + b"rest", [("dropped", b"x")]),  # ids in its value
    ]
    written: dict[int, list[Written]] = {0: [], 1: []}
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        for i in range(40):
            key, value, headers = shapes[i % len(shapes)]
            partition = i % 3 % 2  # uneven: partition 0 gets more
            meta = await producer.send_and_wait(
                topic, value, key=key, headers=headers or [], partition=partition
            )
            bare = value is not None and value.startswith(embedding_records.MAGIC)
            written[partition].append((meta.offset, key, value, None if bare else headers))
    finally:
        await producer.stop()
    return written


def _read(
    settings: Settings, topic: str, starts: dict[int, int], ends: dict[int, int]
) -> dict[int, list[Written]]:
    batches = list(read_cut(settings, topic, starts, ends, batch=7))
    read: dict[int, list[Written]] = {0: [], 1: []}
    if not batches:
        return read
    batch = join(batches)
    for i in range(len(batch)):
        read[batch.partitions[i]].append((batch.offsets[i], batch.keys[i], batch.values[i], batch.headers[i]))
    return read


async def test_a_cut_reads_every_record_as_written(topic: tuple[Settings, str]) -> None:
    settings, name = topic
    written = await _write(settings, name)
    ends = cut_ends(settings, name, [0, 1])
    assert ends == {p: len(records) for p, records in written.items()}
    assert _read(settings, name, {0: 0, 1: 0}, ends) == written


async def test_a_cut_starts_and_ends_where_it_is_told(topic: tuple[Settings, str]) -> None:
    settings, name = topic
    written = await _write(settings, name)
    read = _read(settings, name, {0: 3, 1: 10}, {0: 20, 1: 10})  # partition 1: nothing to read
    assert read == {0: written[0][3:20], 1: []}
    assert _read(settings, name, {0: 0}, {0: 1}) == {0: written[0][:1], 1: []}
    assert _read(settings, name, {0: 5, 1: 5}, {0: 5, 1: 2}) == {0: [], 1: []}


@pytest.mark.timeout(60, method="thread")  # the read blocks in C: a signal would wait for it
async def test_a_batch_shorter_than_asked_comes_without_waiting_out_the_timeout(
    topic: tuple[Settings, str],
) -> None:
    # A batch call waits for every record asked for, or its timeout: the last, short batch of
    # each cut used to wait it out (a second of every rebuild). Here that would be ten minutes,
    # and the test's timeout fails it.
    settings, name = topic
    written = await _write(settings, name)
    consumer = PackedConsumer(librdkafka_config(settings), name, {0: 0}, {0: len(written[0])})
    try:
        chunks = []
        while (chunk := consumer.read(100_000, 600_000)) is not None:
            chunks.append(chunk)
    finally:
        consumer.close()
    assert sum(len(chunk[0]) for chunk in chunks) == len(written[0])


async def test_a_topic_is_found_by_its_partitions_or_named_as_missing(topic: tuple[Settings, str]) -> None:
    settings, name = topic
    assert partitions(settings, name) == [0, 1]
    with pytest.raises(FacestreamError) as missing:
        partitions(settings, f"{name}.absent", attempts=2, pause_s=0.1)
    assert missing.value.code == ErrorCode.UNAVAILABLE and "topics create" in str(missing.value)


def test_bad_settings_and_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match=r"no\.such\.setting"):
        PackedConsumer({"no.such.setting": "1"}, "t", {}, {0: 1})
    consumer = PackedConsumer({"bootstrap.servers": "127.0.0.1:1", "group.id": "g"}, "t", {}, {})
    with pytest.raises(ValueError, match="max_records"):
        consumer.read(0)
    assert consumer.read(1) is None  # nothing assigned: nothing to read
    consumer.close()
    with pytest.raises(RuntimeError, match="closed"):
        consumer.read(1)
