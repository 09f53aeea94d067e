"""Micro-batches of what is ready: a lone record at once, what queued behind it as one batch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from core.settings import Settings
from streams.ready_batches import ready_batches

END = object()


class Source:
    """An async iterable over a queue, which can say whether an item is waiting."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[object] = asyncio.Queue()

    def waiting(self) -> bool:
        return not self.queue.empty()

    async def __aiter__(self) -> AsyncIterator[object]:
        while (item := await self.queue.get()) is not END:
            yield item


async def test_a_lone_record_goes_at_once() -> None:
    source = Source()
    batches = ready_batches(source, waiting=source.waiting, max_size=16)
    source.queue.put_nowait(1)
    # No window to wait out: the batch is there well within a millisecond's worth of loop turns.
    assert await asyncio.wait_for(anext(batches), timeout=0.05) == [1]


async def test_what_queued_goes_as_one_batch_up_to_the_maximum() -> None:
    source = Source()
    for item in range(5):
        source.queue.put_nowait(item)
    batches = ready_batches(source, waiting=source.waiting, max_size=3)
    assert await anext(batches) == [0, 1, 2]
    assert await anext(batches) == [3, 4]
    source.queue.put_nowait(5)
    assert await anext(batches) == [5]


async def test_a_linger_waits_for_company_after_the_first_record() -> None:
    source = Source()
    batches = ready_batches(source, waiting=source.waiting, max_size=16, linger_s=0.2)
    source.queue.put_nowait("first")
    loop = asyncio.get_running_loop()
    loop.call_later(0.02, source.queue.put_nowait, "second")
    started = loop.time()
    assert await anext(batches) == ["first", "second"]
    # It lingered for the second record, then for the rest of its window.
    assert 0.15 <= loop.time() - started < 1.0


async def test_the_end_of_the_source_ends_the_batches() -> None:
    source = Source()
    for item in (1, 2, END):
        source.queue.put_nowait(item)
    assert [batch async for batch in ready_batches(source, waiting=source.waiting, max_size=8)] == [[1, 2]]


def test_workers_do_not_wait_for_a_batch_by_default() -> None:
    assert Settings().batch_max_wait_s == 0.0


def test_a_taken_batch_logs_how_long_each_record_waited() -> None:
    import time
    from types import SimpleNamespace

    from structlog.testing import capture_logs

    from streams.faust_app import log_taken

    sent = time.time() - 0.25
    messages = [
        SimpleNamespace(headers=[("correlation_id", b"c-1")], timestamp=sent),
        SimpleNamespace(headers=[], timestamp=None),
    ]
    with capture_logs() as logs:
        log_taken("identify", messages)
    (entry,) = logs
    assert entry["event"] == "batch_taken" and entry["stage"] == "identify" and entry["size"] == 2
    assert entry["correlation_ids"] == ["c-1", None]
    assert 250 <= entry["waited_ms"][0] < 5000 and entry["waited_ms"][1] is None
