"""The project's topics with explicit configs, and creating them (never left to auto-create)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from core.kafka import make_admin
from core.settings import MiB, Settings

DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)


def topic_specs(settings: Settings) -> list[TopicSpec]:
    t = settings.topics
    parts = settings.topic_partitions
    image_records = str(settings.max_message_bytes)
    requests = {
        "retention.ms": str(settings.request_retention_ms),
        "max.message.bytes": image_records,
    }
    compacted = {
        "cleanup.policy": "compact",
        # Small segments so that the cleaner can act on recent data: compaction only
        # touches closed segments.
        "segment.ms": str(10 * 60 * 1000),
        "min.cleanable.dirty.ratio": "0.1",
        # How long a tombstone stays readable: a replica offline for longer than this
        # must rebuild from a snapshot taken after the deletion, or from the log.
        "delete.retention.ms": str(DAY_MS),
        "max.message.bytes": str(MiB),
    }
    return [
        TopicSpec(t.enroll_requests, parts, requests),
        TopicSpec(t.identify_requests, parts, requests),
        TopicSpec(t.embeddings, parts, compacted),
        TopicSpec(t.identify_queries, parts, {"retention.ms": str(settings.request_retention_ms)}),
        TopicSpec(t.identify_results, parts, {"retention.ms": str(DAY_MS)}),
        TopicSpec(t.enrollment_outcomes, parts, {"retention.ms": str(7 * DAY_MS)}),
        TopicSpec(t.replica_status, 1, {**compacted, "segment.ms": str(60 * 1000)}),
        # One partition: every process reads all of it, and a gallery's records stay in order.
        TopicSpec(t.galleries, 1, {**compacted, "delete.retention.ms": str(7 * DAY_MS)}),
        TopicSpec(t.erasure_requests, parts, {"retention.ms": str(7 * DAY_MS)}),
        TopicSpec(t.erasures, parts, {"retention.ms": str(365 * DAY_MS)}),
        TopicSpec(t.audit, parts, {"retention.ms": str(365 * DAY_MS)}),
        TopicSpec(t.dead_letter, 1, {"retention.ms": str(14 * DAY_MS), "max.message.bytes": image_records}),
        TopicSpec(
            t.enrollment_images,
            parts,
            {
                **compacted,
                # Compacted by face id (erasure tombstones it) and deleted after its retention.
                "cleanup.policy": "compact,delete",
                "retention.ms": str(settings.image_retention_ms),
                "max.message.bytes": image_records,
            },
        ),
    ]


def embeddings_spec(settings: Settings, name: str) -> TopicSpec:
    """Another embeddings topic (a gallery re-embedded under another pack), configured alike."""
    (spec,) = [s for s in topic_specs(settings) if s.name == settings.topics.embeddings]
    return TopicSpec(name, spec.partitions, dict(spec.configs))


def reply_topic_spec(settings: Settings) -> TopicSpec:
    """One reply topic per facade instance: replies never fan out to other instances."""
    return TopicSpec(
        settings.topics.replies(settings.instance_id),
        1,
        {"retention.ms": str(60 * 60 * 1000), "max.message.bytes": str(MiB)},
    )


async def ensure_topics(settings: Settings, specs: list[TopicSpec]) -> list[str]:
    """Create the topics that are missing; returns the names created."""
    admin = make_admin(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if missing:
            # Another process may win the race: the topic exists, which is all we need.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(
                            s.name,
                            num_partitions=s.partitions,
                            replication_factor=settings.topic_replication_factor,
                            topic_configs=s.configs,
                        )
                        for s in missing
                    ]
                )
        return [s.name for s in missing]
    finally:
        await admin.close()


async def list_topic_names(settings: Settings) -> set[str]:
    admin = make_admin(settings)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()
