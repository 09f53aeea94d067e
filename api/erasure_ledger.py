"""What the facade knows of erasures: the erasure ledger topic, read from its beginning.

Every facade instance reads the whole ledger, so a receipt can be asked of any of them. The
ledger holds ids, person ids and face ids only (no biometric data) and erasures are rare, so
the entries stay in memory; the topic's retention (a year) bounds them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from core.errors import FacestreamError
from core.follow import TopicFollower
from core.kafka import decode, event_type, make_admin
from core.logging import get_logger
from core.settings import Settings
from schemas.events import DEFAULT_GALLERY, ErasureRequested, FaceErased, GalleryErased, PersonErased

log = get_logger(__name__)

Outcome = PersonErased | FaceErased | GalleryErased
_TYPES: dict[str, type[ErasureRequested | Outcome]] = {
    t.__name__: t for t in (ErasureRequested, PersonErased, FaceErased, GalleryErased)
}


@dataclass
class LedgerEntry:
    requested: ErasureRequested | None = None
    requested_at: datetime | None = None
    outcome: Outcome | None = None
    outcome_at: datetime | None = None
    # Where the outcome sits on the ledger: the projector has applied it once past it.
    outcome_partition: int | None = None
    outcome_offset: int | None = None

    @property
    def gallery(self) -> str:
        known = self.requested or self.outcome
        return known.gallery if known is not None else DEFAULT_GALLERY


class ErasureLedger:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = settings.topics.erasures
        self.entries: dict[str, LedgerEntry] = {}
        self.follower = TopicFollower(settings, self.topic, self._apply)
        self._committed: tuple[float, dict[tuple[str, int], int]] = (0.0, {})

    async def start(self) -> None:
        self.admin: AIOKafkaAdminClient = make_admin(self.settings)
        await self.admin.start()
        await self.follower.start()

    async def stop(self) -> None:
        await self.follower.stop()
        await self.admin.close()

    def get(self, erasure_id: str) -> LedgerEntry | None:
        return self.entries.get(erasure_id)

    def note(
        self,
        fact: ErasureRequested | Outcome,
        *,
        at: datetime,
        partition: int | None = None,
        offset: int | None = None,
    ) -> None:
        entry = self.entries.setdefault(fact.erasure_id, LedgerEntry())
        if isinstance(fact, ErasureRequested):
            entry.requested, entry.requested_at = fact, at
        else:
            entry.outcome, entry.outcome_at = fact, at
            entry.outcome_partition, entry.outcome_offset = partition, offset

    async def projector_offsets(self) -> dict[tuple[str, int], int]:
        """The projector group's committed offsets, (topic, partition) -> next offset; asked of
        the broker at most once a second."""
        fetched_at, cached = self._committed
        if time.monotonic() - fetched_at < 1.0:
            return cached
        try:
            offsets = await self.admin.list_consumer_group_offsets(f"{self.settings.topic_prefix}.projector")
        except KafkaError as exc:
            log.warning("projector_offsets_unavailable", error=str(exc))
            return cached
        committed = {
            (tp.topic, tp.partition): meta.offset for tp, meta in offsets.items() if meta.offset >= 0
        }
        self._committed = (time.monotonic(), committed)
        return committed

    def _apply(self, record: Any) -> None:
        fact_type = _TYPES.get(event_type(record) or "")
        if fact_type is None:
            return
        try:
            envelope = decode(record.value, fact_type)
        except FacestreamError:
            return
        self.note(envelope.payload, at=envelope.time, partition=record.partition, offset=record.offset)
