"""run_guarded: broker errors retried for as long as they last; any other failure retried,
then each record alone, and what still fails becomes a dead letter. It never exits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError

from core import batch_guard
from core.errors import ErrorCode, FacestreamError
from core.rd_producer import ProduceFailed, RecordRefused


@dataclass(frozen=True)
class Message:
    topic: str
    offset: int


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    async def instant(_: float) -> None:
        return None

    monkeypatch.setattr(batch_guard.asyncio, "sleep", instant)


class Letters:
    def __init__(self, failures: int = 0) -> None:
        self.sent: list[tuple[Any, FacestreamError]] = []
        self.failures = failures

    async def __call__(self, messages: Sequence[Any], error: FacestreamError) -> None:
        if self.failures:
            self.failures -= 1
            raise (
                KafkaConnectionError()
                if self.failures % 2
                else ProduceFailed("Local: Broker transport failure")
            )
        self.sent += [(m, error) for m in messages]


def flaky(failures: list[BaseException], *, poison: Any = None):  # type: ignore[no-untyped-def]
    calls: list[Sequence[Any]] = []

    async def process(messages: Sequence[Any]) -> None:
        calls.append(list(messages))
        if failures:
            raise failures.pop(0)
        if poison is not None and poison in messages:
            raise ValueError("poison")

    return process, calls


BATCH = [Message("t", 1), Message("t", 2), Message("t", 3)]


async def test_success_runs_once() -> None:
    process, calls = flaky([])
    letters = Letters()
    await batch_guard.run_guarded(process, BATCH, stage="enroll", dead_letters=letters)
    assert calls == [BATCH] and letters.sent == []


# aiokafka's (the consumers') and librdkafka's (the producers', `core.rd_producer`).
BROKER_AWAY = [KafkaConnectionError, lambda: ProduceFailed("Local: Message timed out")]
REFUSED = [MessageSizeTooLargeError, lambda: RecordRefused("Broker: Message size too large")]


@pytest.mark.parametrize("error", BROKER_AWAY)
async def test_broker_errors_are_retried_for_as_long_as_they_last(error: Any) -> None:
    process, calls = flaky([error() for _ in range(20)])
    letters = Letters()
    await batch_guard.run_guarded(process, BATCH, stage="enroll", dead_letters=letters)
    assert len(calls) == 21 and letters.sent == []


async def test_a_poison_record_is_dead_lettered_alone_and_the_rest_processed() -> None:
    poison = BATCH[1]
    process, calls = flaky([], poison=poison)
    letters = Letters(failures=2)  # the dead-letter topic itself is briefly away
    await batch_guard.run_guarded(process, BATCH, stage="identify", dead_letters=letters)
    assert calls[: batch_guard.RETRIES] == [BATCH] * batch_guard.RETRIES
    assert [BATCH[0]] in calls and [BATCH[2]] in calls
    assert [m for m, _ in letters.sent] == [poison]
    assert letters.sent[0][1].code is ErrorCode.INTERNAL


async def test_a_lone_failing_record_is_tried_retries_times_then_dead_lettered() -> None:
    process, calls = flaky([ValueError("bug") for _ in range(10)])
    letters = Letters()
    await batch_guard.run_guarded(process, BATCH[:1], stage="identify", dead_letters=letters)
    assert len(calls) == batch_guard.RETRIES
    assert [m for m, _ in letters.sent] == BATCH[:1]


@pytest.mark.parametrize("error", REFUSED)
async def test_an_output_the_broker_refuses_for_its_size_ends_as_a_dead_letter_not_a_stall(
    error: Any,
) -> None:
    process, calls = flaky([error() for _ in range(100)])
    letters = Letters()
    await batch_guard.run_guarded(process, BATCH[:1], stage="enroll", dead_letters=letters)
    assert len(calls) == batch_guard.RETRIES
    assert [m for m, _ in letters.sent] == BATCH[:1]
