"""run_guarded: retry broker errors, exit the process on anything else."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

from streams import batch_guard


class Exited(SystemExit):
    pass


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    codes: list[int] = []

    def fake_exit(code: int) -> None:
        codes.append(code)
        raise Exited(code)

    async def no_sleep(_: float) -> None:
        return None

    monkeypatch.setattr(batch_guard.os, "_exit", fake_exit)
    monkeypatch.setattr(batch_guard.asyncio, "sleep", no_sleep)
    return codes


def flaky(failures: list[BaseException]):  # type: ignore[no-untyped-def]
    calls: list[Sequence[Any]] = []

    async def process(messages: Sequence[Any]) -> None:
        calls.append(messages)
        if failures:
            raise failures.pop(0)

    return process, calls


async def test_success_runs_once() -> None:
    process, calls = flaky([])
    await batch_guard.run_guarded(process, ["m"], stage="enroll")
    assert calls == [["m"]]


async def test_kafka_errors_are_retried_until_success(fast: list[int]) -> None:
    process, calls = flaky([KafkaConnectionError(), KafkaConnectionError()])
    await batch_guard.run_guarded(process, ["m"], stage="enroll")
    assert len(calls) == 3
    assert fast == []


async def test_persistent_kafka_errors_end_the_process(fast: list[int]) -> None:
    process, calls = flaky([KafkaConnectionError() for _ in range(batch_guard.RETRIES)])
    with pytest.raises(Exited):
        await batch_guard.run_guarded(process, ["m"], stage="enroll")
    assert len(calls) == batch_guard.RETRIES
    assert fast == [batch_guard.EXIT_CODE]


async def test_other_errors_end_the_process_without_retry(fast: list[int]) -> None:
    process, calls = flaky([ValueError("bug")])
    with pytest.raises(Exited):
        await batch_guard.run_guarded(process, ["m"], stage="identify")
    assert len(calls) == 1
    assert fast == [batch_guard.EXIT_CODE]
