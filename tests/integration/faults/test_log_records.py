"""The log counter the fault tests rely on finds a duplicate when there is one."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.integration.faults.log_records import count_records

pytestmark = [pytest.mark.kafka]


async def _write(bootstrap: str, topic: str, records: list[tuple[str, bytes | None]]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key.encode())
    finally:
        await producer.stop()


async def _delete(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()


def test_a_key_written_twice_is_counted_twice(kafka_bootstrap: str) -> None:
    topic = f"logcount.{uuid.uuid4().hex[:8]}"
    records = [("a", b"1"), ("b", b"1"), ("a", b"2"), ("c", b"1"), ("c", None)]
    asyncio.run(_write(kafka_bootstrap, topic, records))
    try:
        counted = count_records(kafka_bootstrap, topic)
    finally:
        asyncio.run(_delete(kafka_bootstrap, topic))
    assert counted.duplicated == {"a": 2}
    assert dict(counted.values) == {"a": 2, "b": 1, "c": 1}
    assert dict(counted.tombstones) == {"c": 1}
