"""Run one micro-batch so that a failure never acknowledges records it did not process.

The agent takes batches without acknowledging them (faust's `noack_take`) and acknowledges a
batch only once `run_guarded` returns: by then the batch's outputs are on the log, or its
records are dead letters. A broker error is retried with backoff for as long as it lasts
(nothing is acknowledged meanwhile; should the group move the partitions away, their next
owner redoes the batch: at-least-once, outputs idempotent by face id and event id). Any other
failure is retried a few times, then every record is tried alone, so that one poison record
cannot take its batch with it; a record that still fails becomes a dead letter carrying the
error, and the partition moves on. Nothing is lost and nothing stalls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka.errors import KafkaError

from core.errors import ErrorCode, FacestreamError
from core.logging import get_logger

log = get_logger(__name__)

RETRIES = 3
MAX_BACKOFF_S = 10.0

Process = Callable[[Sequence[Any]], Awaitable[None]]
DeadLetters = Callable[[Sequence[Any], FacestreamError], Awaitable[None]]


async def run_guarded(
    process: Process, messages: Sequence[Any], *, stage: str, dead_letters: DeadLetters
) -> None:
    if await _attempt(process, messages, stage=stage, retries=RETRIES):
        return
    log.error("batch_split", stage=stage, records=len(messages))
    for message in messages:
        if len(messages) > 1 and await _attempt(process, [message], stage=stage, retries=1):
            continue
        error = FacestreamError(ErrorCode.INTERNAL, f"{stage} failed on this record {RETRIES} times")
        await _until_sent(dead_letters, message, error, stage=stage)
        log.error("record_dead_lettered", stage=stage, topic=message.topic, offset=message.offset)


async def _attempt(process: Process, messages: Sequence[Any], *, stage: str, retries: int) -> bool:
    """True once `process` succeeded; broker errors do not count against `retries`."""
    failures = 0
    delay = 0.5
    while True:
        try:
            await process(messages)
            return True
        except KafkaError as exc:
            log.warning("batch_retry", stage=stage, error=repr(exc), backoff_s=delay)
        except Exception:
            failures += 1
            log.exception("batch_failed", stage=stage, records=len(messages), attempt=failures)
            if failures >= retries:
                return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_BACKOFF_S)


async def _until_sent(dead_letters: DeadLetters, message: Any, error: FacestreamError, *, stage: str) -> None:
    delay = 0.5
    while True:
        try:
            await dead_letters([message], error)
            return
        except KafkaError as exc:
            log.warning("dead_letter_retry", stage=stage, error=repr(exc), backoff_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_S)
