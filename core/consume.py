"""One consumer step for every aiokafka consumer: poll -> handle -> produce -> commit.

A poll takes what the consumer has already fetched (at most ``max_records``) and waits only
while nothing is there: a lone record is handled at once, and batches form only when records
arrive faster than they are handled. The handler turns the batch into outputs; they are
produced and every ack awaited; only then, for a consumer in a group, are the offsets
committed. The next poll comes after that: a slow handler, broker or database slows the
consuming itself, and aiokafka fetches no more than one buffer per partition meanwhile
(backpressure: nothing queues up in memory).

Failures follow the stream workers' policy (``core.batch_guard``): transient errors are
retried with backoff for as long as they last, anything else a few times, then record by
record, and a record that still fails is a dead letter. Nothing is committed before that.
A consumer with nothing to produce (a view kept in memory) logs such a record and moves on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeAlias, TypeVar

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from core.batch_guard import BROKER_ERRORS, run_guarded, until_done
from core.errors import FacestreamError
from core.logging import get_logger

log = get_logger(__name__)

# How long a poll waits when nothing is fetched yet; one with records waits for nothing.
IDLE_POLL_MS = 500

Out = TypeVar("Out")
Record: TypeAlias = ConsumerRecord[bytes, bytes]
Handle = Callable[[list[Record]], Awaitable[Sequence[Out]]]


class Source(Protocol):
    """aiokafka's consumer, as far as a step uses it."""

    async def getmany(
        self, *partitions: Any, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[Any, list[Record]]: ...

    async def commit(self) -> None: ...


@dataclass(kw_only=True)
class ConsumerStep(Generic[Out]):
    consumer: Source
    handle: Handle[Out]
    stage: str  # in logs and dead letters
    # Returns once every output is acknowledged. None: nothing to produce (a view in memory).
    produce: Callable[[Sequence[Out]], Awaitable[object]] | None = None
    dead_letter: Callable[[Record, FacestreamError], Out] | None = None
    commit: bool = False  # a consumer in a group; the others keep their position elsewhere
    max_records: int = 500
    transient: tuple[type[BaseException], ...] = BROKER_ERRORS

    async def run(self) -> None:
        while True:
            await self.once()

    async def once(self) -> None:
        """One poll, and what it brought handled, produced and committed."""
        fetched = await until_done(self._poll, stage=self.stage, what="poll")
        records = [record for batch in fetched.values() for record in batch]
        if not records:
            return
        await run_guarded(
            self._process,
            records,
            stage=self.stage,
            dead_letters=self._dead_letters,
            transient=self.transient,
        )
        if self.commit:
            await until_done(self.consumer.commit, stage=self.stage, what="commit")

    async def _poll(self) -> dict[Any, list[Record]]:
        return await self.consumer.getmany(timeout_ms=IDLE_POLL_MS, max_records=self.max_records)

    async def _process(self, records: Sequence[Record]) -> None:
        outputs = await self.handle(list(records))
        if outputs and self.produce is not None:
            await self.produce(outputs)

    async def _dead_letters(self, records: Sequence[Record], error: FacestreamError) -> None:
        if self.produce is None or self.dead_letter is None:
            log.error("record_skipped", stage=self.stage, records=len(records))
            return
        await self.produce([self.dead_letter(record, error) for record in records])


async def positions(consumer: AIOKafkaConsumer) -> dict[int, int]:
    """Partition -> the offset the consumer reads next, for every partition it holds."""
    return {tp.partition: await consumer.position(tp) for tp in consumer.assignment()}
