"""Run one batch so that a failure never acknowledges records it did not process.

The stream workers acknowledge a batch (faust's `noack_take`) and every other consumer commits
(`core.consume`) only once `run_guarded` returns: by then the batch's outputs are on the log,
or its records are dead letters. A transient error (the broker's, or what a consumer names
besides: the projector's database) is retried with backoff for as long as it lasts (nothing
is acknowledged meanwhile; should the group move the partitions away, their next owner redoes
the batch: at-least-once, outputs idempotent by face id and event id). Any other failure is
retried a few times, then every record is tried alone, so that one poison record cannot take
its batch with it; a record that still fails becomes a dead letter carrying the error, and the
partition moves on. Nothing is lost and nothing stalls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Sequence
from functools import partial
from typing import Any, TypeVar

from aiokafka.errors import (
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)

from core.errors import ErrorCode, FacestreamError
from core.logging import get_logger
from core.rd_producer import ProduceFailed, RecordRefused

log = get_logger(__name__)

RETRIES = 3
MAX_BACKOFF_S = 10.0
# aiokafka's (the consumers) and librdkafka's (`core.rd_producer`, the producers on the path).
BROKER_ERRORS: tuple[type[BaseException], ...] = (KafkaError, ProduceFailed)
# Broker errors that no retry mends: outputs the broker will never take. They fail like any
# other error (and end as dead letters), or the partition would stall behind them for good.
REFUSED: tuple[type[BaseException], ...] = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    RecordRefused,
)

T = TypeVar("T")
Process = Callable[[Sequence[Any]], Awaitable[None]]
DeadLetters = Callable[[Sequence[Any], FacestreamError], Awaitable[None]]


async def run_guarded(
    process: Process,
    messages: Sequence[Any],
    *,
    stage: str,
    dead_letters: DeadLetters,
    transient: tuple[type[BaseException], ...] = BROKER_ERRORS,
) -> None:
    if await _attempt(process, messages, stage=stage, retries=RETRIES, transient=transient):
        return
    log.error("batch_split", stage=stage, records=len(messages))
    for message in messages:
        alone = [message]
        if len(messages) > 1 and await _attempt(process, alone, stage=stage, retries=1, transient=transient):
            continue
        log.error("record_failed", stage=stage, topic=message.topic, offset=message.offset)
        error = FacestreamError(ErrorCode.INTERNAL, f"{stage} failed on this record {RETRIES} times")
        await until_done(partial(dead_letters, alone, error), stage=stage, what="dead_letter")


async def until_done(call: Callable[[], Awaitable[T]], *, stage: str, what: str) -> T:
    """What `call` returns, once no broker error interrupts it (retried with backoff)."""
    delays = backoff()
    while True:
        try:
            return await call()
        except BROKER_ERRORS as exc:
            delay = next(delays)
            log.warning("broker_retry", stage=stage, call=what, error=repr(exc), backoff_s=delay)
        await asyncio.sleep(delay)


def backoff() -> Iterator[float]:
    """Seconds to wait before each retry: doubling, capped."""
    delay = 0.5
    while True:
        yield delay
        delay = min(delay * 2, MAX_BACKOFF_S)


async def _attempt(
    process: Process,
    messages: Sequence[Any],
    *,
    stage: str,
    retries: int,
    transient: tuple[type[BaseException], ...],
) -> bool:
    """True once `process` succeeded; transient errors do not count against `retries`."""
    failures = 0
    delays = backoff()
    while True:
        try:
            await process(messages)
            return True
        except Exception as exc:
            if isinstance(exc, transient) and not isinstance(exc, REFUSED):
                delay = next(delays)
                log.warning("batch_retry", stage=stage, error=repr(exc), backoff_s=delay)
            else:
                failures += 1
                log.exception("batch_failed", stage=stage, records=len(messages), attempt=failures)
                if failures >= retries:
                    return False
                delay = next(delays)
        await asyncio.sleep(delay)
