"""Run one micro-batch so that a failure never acknowledges records it did not process.

faust acks a `take_events` batch when the loop body exits, even by an exception. So a
transient broker error is retried here with backoff, and anything else ends the process
without returning to faust: the uncommitted records are redelivered to the restarted worker
(at-least-once; outputs are idempotent by face id and event id).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka.errors import KafkaError

from core.logging import get_logger

log = get_logger(__name__)

RETRIES = 5
EXIT_CODE = 70  # EX_SOFTWARE


async def run_guarded(
    process: Callable[[Sequence[Any]], Awaitable[None]], messages: Sequence[Any], *, stage: str
) -> None:
    delay = 0.5
    for attempt in range(1, RETRIES + 1):
        try:
            await process(messages)
            return
        except KafkaError as exc:
            log.warning("batch_retry", stage=stage, attempt=attempt, error=repr(exc), backoff_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
        except Exception:
            log.exception("batch_failed", stage=stage, records=len(messages))
            break
    log.critical("worker_exiting", stage=stage, reason="batch could not be processed")
    os._exit(EXIT_CODE)
