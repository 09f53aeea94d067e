"""The facade's librdkafka producer against the real broker: every record acknowledged with
where it landed, readable as sent; failures are `ProduceFailed`, never a hang."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.partitioner import DefaultPartitioner
from confluent_kafka import KafkaError

from core.rd_producer import ProduceFailed, RdProducer, RecordRefused
from core.settings import Settings
from tests.fixtures.topics import scratch_topic

pytestmark = [pytest.mark.kafka]


@pytest.fixture
async def topic(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[tuple[Settings, str]]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"testrdprod{uuid.uuid4().hex[:6]}",
        index_dir=tmp_path,
    )
    async with scratch_topic(settings.kafka_bootstrap, f"{settings.topic_prefix}.records", 2) as name:
        yield settings, name


Read = tuple[int, int, bytes | None, bytes | None, list[tuple[str, bytes]]]


async def _whole_log(settings: Settings, topic: str) -> list[Read]:
    """Every record on the topic, up to its end offsets."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: list[Read] = []
    try:
        ends = await consumer.end_offsets(list(consumer.assignment()))
        assert len(ends) == 2
        async with asyncio.timeout(30):
            while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    found += [(r.partition, r.offset, r.key, r.value, list(r.headers)) for r in records]
    finally:
        await consumer.stop()
    return found


async def test_records_are_acknowledged_where_they_landed(topic: tuple[Settings, str]) -> None:
    settings, name = topic
    producer = RdProducer(settings, delivery_timeout_s=30.0)
    await producer.start()
    try:
        assert await producer.reachable()
        photo = bytes(range(256)) * 600  # a photo's size, every byte value
        sent = [(f"k{n}".encode(), photo + bytes([n]), [("n", str(n).encode())]) for n in range(20)]
        acks = await asyncio.gather(*[await producer.send(name, v, k, headers=h) for k, v, h in sent])
    finally:
        await producer.stop()
    assert len({(a.partition, a.offset) for a in acks}) == 20
    log = await _whole_log(settings, name)
    assert len(log) == 20  # every record once: no retry wrote one twice
    read = {(p, o): (k, v, h) for p, o, k, v, h in log}
    for (key, value, headers), ack in zip(sent, acks, strict=True):
        assert ack.topic == name
        assert read[(ack.partition, ack.offset)] == (key, value, headers)


async def test_a_key_lands_on_the_partition_aiokafka_would_pick(topic: tuple[Settings, str]) -> None:
    """The eraser (aiokafka) tombstones the face the enroll worker (librdkafka) wrote: same key,
    same partition, or compaction keeps the face and a shard other than its owner erases it."""
    settings, name = topic
    producer = RdProducer(settings, delivery_timeout_s=30.0)
    await producer.start()
    try:
        keys = [f"face-{n}".encode() for n in range(40)]
        acks = await asyncio.gather(*[await producer.send(name, b"v", key) for key in keys])
    finally:
        await producer.stop()
    partitions, pick = [0, 1], DefaultPartitioner()
    assert [a.partition for a in acks] == [pick(k, partitions, partitions) for k in keys]


async def test_a_tombstone_lands_as_a_null_value(topic: tuple[Settings, str]) -> None:
    settings, name = topic
    producer = RdProducer(settings, delivery_timeout_s=30.0)
    await producer.start()
    try:
        ack = await (await producer.send(name, None, b"gone"))
    finally:
        await producer.stop()
    assert [(p, o, k, v) for p, o, k, v, _ in await _whole_log(settings, name)] == [
        (ack.partition, ack.offset, b"gone", None)
    ]


async def test_a_record_over_the_limit_fails(topic: tuple[Settings, str]) -> None:
    settings, name = topic
    producer = RdProducer(settings, delivery_timeout_s=30.0)
    await producer.start()
    try:
        oversized = b"x" * (settings.max_message_bytes + 1)
        with pytest.raises(RecordRefused, match=r"too large|Size"):
            await asyncio.wait_for(await producer.send(name, oversized), timeout=15)
    finally:
        await producer.stop()


async def test_no_broker_fails_to_start_within_its_timeout(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        kafka_bootstrap="127.0.0.1:9",  # discard port: nothing listens
        index_dir=tmp_path,
    )
    producer = RdProducer(settings, delivery_timeout_s=30.0)
    with pytest.raises(ProduceFailed):
        await asyncio.wait_for(producer.start(timeout_s=1.0), timeout=15)


async def test_a_record_that_cannot_be_delivered_fails_its_future(topic: tuple[Settings, str]) -> None:
    settings, name = topic
    producer = RdProducer(settings, delivery_timeout_s=2.0)
    await producer.start()
    try:
        acked = await producer.send(f"{name}-missing", b"nobody")  # the broker does not create topics
        with pytest.raises(ProduceFailed) as failed:
            await asyncio.wait_for(acked, timeout=20)
        assert not isinstance(failed.value, RecordRefused)  # the topic may yet appear: transient
    finally:
        await producer.stop(timeout_s=1.0)


async def test_a_fatal_error_puts_a_new_producer_in_place(topic: tuple[Settings, str]) -> None:
    """After a fatal error librdkafka's producer refuses every record: what it held fails at
    once (its callers send it again), and the records after it go out through a new one."""
    settings, name = topic
    producer = RdProducer(settings, delivery_timeout_s=60.0)
    await producer.start()
    try:
        held = await producer.send(f"{name}-missing", b"held")  # waits for a topic that never comes
        # As librdkafka reports one on the deliveries thread (its `error_cb`), e.g. after a broker
        # lost records it had acknowledged; no broker here can be made to do that on demand.
        fatal = KafkaError(KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER, "simulated", fatal=True)
        producer._on_error(fatal, 0)
        with pytest.raises(ProduceFailed) as failed:
            await asyncio.wait_for(held, timeout=20)  # well before its delivery timeout
        assert not isinstance(failed.value, RecordRefused)
        ack = await asyncio.wait_for(await producer.send(name, b"after", b"k"), timeout=20)
        producer._on_error(fatal, 0)  # the replaced one's again, as it drains: not the new one's end
        await asyncio.sleep(0.5)  # the deliveries thread's next turns
        assert producer.replaced == 1
    finally:
        await producer.stop()
    assert [(p, o, v) for p, o, _, v, _ in await _whole_log(settings, name)] == [
        (ack.partition, ack.offset, b"after")
    ]
