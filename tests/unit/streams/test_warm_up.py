"""A worker reads the galleries and runs its engine once before its first command, on the
thread its commands run on; a failure to warm up is logged, never fatal."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import numpy as np

from engine.fake import DeterministicFakeEngine
from streams.faust_app import make_faust_app, micro_batch_agent
from streams.warm_up import warm_up
from tests.unit.streams.factories import settings as make_settings


class Recording(DeterministicFakeEngine):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str]] = []

    def prepare(self, image: bytes) -> Any:
        self.calls.append(("prepare", threading.current_thread().name))
        return super().prepare(image)

    def embed(self, crops: Any) -> np.ndarray:
        self.calls.append(("embed", threading.current_thread().name))
        return super().embed(crops)


async def test_the_galleries_are_read_and_the_engine_runs_on_the_commands_thread() -> None:
    looked_up: list[str] = []

    async def lookup(gallery: str) -> None:
        looked_up.append(gallery)

    engine = Recording()
    with ThreadPoolExecutor(1, thread_name_prefix="engine") as executor:
        await warm_up(lookup, engine, executor)
    assert looked_up == ["default"]
    assert [name for name, _ in engine.calls] == ["prepare", "embed"]
    assert all(thread.startswith("engine") for _, thread in engine.calls)


async def test_a_failure_to_warm_up_is_left_to_the_first_command() -> None:
    async def unreachable(gallery: str) -> None:
        raise ConnectionError("no broker")

    engine = Recording()
    with ThreadPoolExecutor(1) as executor:
        await warm_up(unreachable, engine, executor)  # does not raise
    assert engine.calls == []


async def test_a_worker_agent_starts_its_producer_warms_up_then_takes_batches_then_stops_it() -> None:
    settings = make_settings()
    app = make_faust_app(settings, "warm")
    order: list[object] = []

    async def warm() -> None:
        order.append("warm")

    async def process(messages: Any) -> None:
        order.append(("batch", len(messages)))

    async def start() -> None:
        order.append("producer started")

    async def stop() -> None:
        order.append("producer stopped")

    worker = SimpleNamespace(process=process, warm=warm)
    producer = SimpleNamespace(start=start, stop=stop)
    micro_batch_agent(app, settings, topic="warm-in", stage="warm", worker=worker, producer=producer)  # type: ignore[arg-type]
    agent = next(iter(app.agents.values()))
    async with agent.test_context() as context:
        await context.put(b"command", key=b"k")
        for _ in range(100):
            if len(order) == 3:
                break
            await asyncio.sleep(0.01)
    assert order == ["producer started", "warm", ("batch", 1), "producer stopped"]
