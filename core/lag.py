"""Consumer lag per group, topic and partition, in records and in seconds.

Seconds are the age of the oldest record not yet processed (the one at the committed
offset): what an on-call engineer wants to know when a queue grows.
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from core.kafka import make_admin, make_consumer
from core.settings import Settings
from schemas.api import ConsumerLagPublic


def watched_groups(settings: Settings) -> dict[str, list[str]]:
    """The project's consumer groups and the topics each consumes."""
    t, prefix = settings.topics, settings.topic_prefix
    return {
        f"{prefix}-enroll": [t.enroll_requests],
        f"{prefix}-identify": [t.identify_requests],
        f"{prefix}.projector": [t.embeddings, t.enrollment_outcomes, t.erasures],
        f"{prefix}.eraser": [t.erasure_requests],
        f"{prefix}.{settings.replica_group}": [t.identify_queries],
    }


async def consumer_lag(settings: Settings, *, now: float | None = None) -> list[ConsumerLagPublic]:
    admin = make_admin(settings)
    consumer = make_consumer(settings, group_id=None)
    await admin.start()
    await consumer.start()
    try:
        # aiokafka has no public call for every topic's metadata.
        cluster = await consumer._client.fetch_all_metadata()
        rows = []
        for group, topics in watched_groups(settings).items():
            committed = await admin.list_consumer_group_offsets(group)
            partitions = [
                TopicPartition(topic, p)
                for topic in topics
                for p in sorted(cluster.partitions_for_topic(topic) or ())
            ]
            ends = await consumer.end_offsets(partitions) if partitions else {}
            for tp in partitions:
                done = committed.get(tp)
                position = done.offset if done is not None and done.offset >= 0 else None
                lag = ends[tp] - (position or 0)
                age = await _age_of(consumer, tp, position, now) if lag > 0 else 0.0
                rows.append(
                    ConsumerLagPublic(
                        group=group,
                        topic=tp.topic,
                        partition=tp.partition,
                        committed=position,
                        end=ends[tp],
                        lag=lag,
                        lag_seconds=round(age, 3),
                    )
                )
        return rows
    finally:
        await consumer.stop()
        await admin.close()


async def _age_of(
    consumer: AIOKafkaConsumer, tp: TopicPartition, position: int | None, now: float | None
) -> float:
    consumer.assign([tp])
    if position is None:
        await consumer.seek_to_beginning(tp)
    else:
        consumer.seek(tp, position)
    try:
        batch = await asyncio.wait_for(consumer.getmany(tp, timeout_ms=2000, max_records=1), 3.0)
    except TimeoutError:
        return 0.0
    records = batch.get(tp) or []
    if not records:
        return 0.0
    return max((now or time.time()) - records[0].timestamp / 1000, 0.0)
