"""Count what is on a topic itself: records per key, read from the beginning to the end offsets.

The fault tests' "nothing duplicated" is decided here, on the log, not by a table whose primary
key could never hold a duplicate.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


@dataclass(frozen=True)
class LogCount:
    """Records on a topic: values per key, tombstones per key, and the total read."""

    values: Counter[str] = field(default_factory=Counter)
    tombstones: Counter[str] = field(default_factory=Counter)

    @property
    def duplicated(self) -> dict[str, int]:
        return {key: n for key, n in self.values.items() if n > 1}


async def _partitions(bootstrap: str, topic: str) -> set[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        return {p["partition"] for p in described["partitions"]}
    finally:
        await admin.close()


async def _count(bootstrap: str, topic: str, timeout_s: float) -> LogCount:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=32 * 1024 * 1024,
    )
    await consumer.start()
    try:
        partitions = await _partitions(bootstrap, topic)
        assert partitions, f"topic {topic} has no partitions"
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        count = LogCount()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            assert loop.time() < deadline, f"could not read {topic} to its end within {timeout_s}s"
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    key = record.key.decode() if record.key is not None else ""
                    if record.value is None:
                        count.tombstones[key] += 1
                    else:
                        count.values[key] += 1
        return count
    finally:
        await consumer.stop()


def count_records(bootstrap: str, topic: str, *, timeout_s: float = 120.0) -> LogCount:
    """Every record of `topic` from its first to its current end offset, counted per key."""
    return asyncio.run(_count(bootstrap, topic, timeout_s))
