"""Micro-batches of what is ready: a lone record is processed at once, batches form under load.

faust's `take(max, within)` waits out its window from the moment it starts waiting, so a lone
request waited up to the whole window (20 ms by default, measured: 20 ms a request on average)
before the worker touched it. Here the first record is taken as soon as it comes; the batch
then takes what is already waiting behind it (records that queued while the previous batch was
processed), up to `max_size`, and goes. A linger (`linger_s`, off by default) waits that long
after the first record for company when nothing is waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import TypeVar

T = TypeVar("T")

LINGER_POLL_S = 0.001  # how often a lingering batch looks for more


async def ready_batches(
    source: AsyncIterable[T], *, waiting: Callable[[], bool], max_size: int, linger_s: float = 0.0
) -> AsyncIterator[list[T]]:
    """Batches of `source`. `waiting()` says whether another item can be had without waiting
    (for a faust stream: its channel's queue is not empty)."""
    items = aiter(source)
    loop = asyncio.get_running_loop()
    while True:
        try:
            batch = [await anext(items)]
        except StopAsyncIteration:
            return
        deadline = loop.time() + linger_s
        ended = False
        while len(batch) < max_size:
            if waiting():
                try:
                    batch.append(await anext(items))
                except StopAsyncIteration:
                    ended = True
                    break
            elif (remaining := deadline - loop.time()) > 0:
                await asyncio.sleep(min(remaining, LINGER_POLL_S))
            else:
                break
        yield batch
        if ended:
            return
