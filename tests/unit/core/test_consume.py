"""The consumer step: what is waiting is one batch (a lone record at once), outputs produced
before the commit and the commit before the next poll, failures retried then record by record
into dead letters, broker errors retried with nothing committed meanwhile."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

from core import batch_guard
from core.consume import ConsumerStep, Record
from core.errors import ErrorCode, FacestreamError
from tests.unit.core.factories import Consumer, record


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    async def instant(_: float) -> None:
        return None

    monkeypatch.setattr(batch_guard.asyncio, "sleep", instant)


class Handler:
    """One output per record; a poison record fails any batch that holds it."""

    def __init__(self, events: list[Any], *, failures: list[BaseException] | None = None) -> None:
        self.events = events
        self.failures = failures or []

    async def __call__(self, records: list[Record]) -> list[str]:
        self.events.append(("handle", [r.offset for r in records]))
        if self.failures:
            raise self.failures.pop(0)
        if any(r.value == b"poison" for r in records):
            raise ValueError("poison")
        return [f"out-{r.offset}" for r in records]


class Producer:
    def __init__(self, events: list[Any], *, failures: int = 0) -> None:
        self.events = events
        self.failures = failures

    async def __call__(self, outputs: Sequence[str]) -> None:
        if self.failures:
            self.failures -= 1
            self.events.append("produce_failed")
            raise KafkaConnectionError()
        self.events.append(("produce", list(outputs)))


def dead_letter(r: Record, error: FacestreamError) -> str:
    assert error.code is ErrorCode.INTERNAL
    return f"dead-{r.offset}"


def step(
    events: list[Any],
    consumer: Consumer | None = None,
    handler: Handler | None = None,
    producer: Producer | None = None,
    **options: Any,
) -> tuple[ConsumerStep[str], Consumer]:
    consumer = consumer or Consumer(events)
    built = ConsumerStep(
        consumer=consumer,
        handle=handler or Handler(events),
        stage="test",
        produce=producer or Producer(events),
        dead_letter=dead_letter,
        commit=True,
        **options,
    )
    return built, consumer


async def test_a_lone_record_is_handled_at_once() -> None:
    events: list[Any] = []
    consumer_step, consumer = step(events)
    consumer.fetched = [record(7)]
    await consumer_step.once()
    assert events == [("poll", 1), ("handle", [7]), ("produce", ["out-7"]), "commit"]


async def test_what_is_waiting_is_one_batch_of_at_most_max_records() -> None:
    events: list[Any] = []
    consumer_step, consumer = step(events, max_records=4)
    consumer.fetched = [record(0), record(1), record(0, partition=1), record(2), record(1, partition=1)]
    await consumer_step.once()
    await consumer_step.once()
    handled = [e[1] for e in events if e[0] == "handle"]
    assert [len(batch) for batch in handled] == [4, 1]


async def test_an_idle_poll_handles_and_commits_nothing() -> None:
    events: list[Any] = []
    consumer_step, _ = step(events)
    await consumer_step.once()
    assert events == [("poll", 0)]


async def test_the_commit_follows_the_acks_and_the_next_poll_follows_the_commit() -> None:
    events: list[Any] = []
    consumer_step, consumer = step(events, producer=Producer(events, failures=2))
    consumer.fetched = [record(0)]
    await consumer_step.once()
    consumer.fetched = [record(1)]
    await consumer_step.once()
    assert events == [
        ("poll", 1),
        ("handle", [0]),
        "produce_failed",
        ("handle", [0]),
        "produce_failed",
        ("handle", [0]),
        ("produce", ["out-0"]),
        "commit",
        ("poll", 1),
        ("handle", [1]),
        ("produce", ["out-1"]),
        "commit",
    ]


async def test_a_failing_batch_is_retried_then_split_and_its_poison_dead_lettered() -> None:
    events: list[Any] = []
    consumer_step, consumer = step(events)
    consumer.fetched = [record(0), record(1, value=b"poison"), record(2)]
    await consumer_step.once()
    handled = [e[1] for e in events if e[0] == "handle"]
    assert handled == [[0, 1, 2]] * batch_guard.RETRIES + [[0], [1], [2]]
    produced = [e[1] for e in events if e[0] == "produce"]
    assert produced == [["out-0"], ["dead-1"], ["out-2"]]
    assert events[-1] == "commit" and events.count("commit") == 1


async def test_broker_errors_are_retried_and_nothing_is_committed_before_the_batch_is_out() -> None:
    events: list[Any] = []
    consumer = Consumer(events, poll_failures=2, commit_failures=3)
    handler = Handler(events, failures=[KafkaConnectionError() for _ in range(10)])
    consumer_step, _ = step(events, consumer=consumer, handler=handler)
    consumer.fetched = [record(0)]
    await consumer_step.once()
    assert events[:1] == [("poll", 1)]
    assert events[1:12] == [("handle", [0])] * 11  # broker errors do not count as failures
    assert events[12:] == [("produce", ["out-0"]), *["commit_failed"] * 3, "commit"]


async def test_a_consumer_may_name_its_own_transient_errors() -> None:
    events: list[Any] = []
    handler = Handler(events, failures=[ConnectionRefusedError() for _ in range(5)])
    consumer_step, consumer = step(events, handler=handler, transient=(KafkaConnectionError, OSError))
    consumer.fetched = [record(0)]
    await consumer_step.once()
    assert [e for e in events if e[0] == "produce"] == [("produce", ["out-0"])]


async def test_a_view_without_a_producer_passes_its_poison() -> None:
    events: list[Any] = []
    consumer = Consumer(events)
    consumer.fetched = [record(0, value=b"poison"), record(1)]
    view = ConsumerStep(consumer=consumer, handle=Handler(events), stage="view")
    await view.once()
    assert ("handle", [1]) in events and "commit" not in events
