"""Reading a topic to its end and on, for what the facade keeps in memory (replica heartbeats,
the erasure ledger): a broker hiccup is logged and retried, never fatal to the facade."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from core.logging import get_logger

log = get_logger(__name__)


async def follow(consumer: AIOKafkaConsumer, apply: Callable[[Any], None], *, what: str) -> None:
    """Hand every record of the consumer's assignment to `apply`, in partition order, forever."""
    while True:
        try:
            batches = await consumer.getmany(timeout_ms=1000)
        except KafkaError as exc:
            log.warning("follow_fetch_failed", topic=what, error=str(exc))
            await asyncio.sleep(1)
            continue
        for records in batches.values():
            for record in records:
                apply(record)
