"""What the facade knows of the index replicas: their heartbeats on the replica-status topic."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from core.errors import FacestreamError
from core.follow import TopicFollower
from core.kafka import decode
from core.logging import get_logger
from core.settings import Settings
from schemas.events import ReplicaStatus

log = get_logger(__name__)


@dataclass(frozen=True)
class Heartbeat:
    status: ReplicaStatus
    received_at: float  # monotonic

    @property
    def age_s(self) -> float:
        return time.monotonic() - self.received_at


class ReplicaTracker:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = settings.topics.replica_status
        self.heartbeats: dict[str, Heartbeat] = {}
        self.follower = TopicFollower(settings, self.topic, self._apply)
        # A replica that stopped beating is gone, whatever its last status said.
        self.stale_after_s = max(3 * settings.status_interval_s, 10.0)

    async def start(self) -> None:
        await self.follower.start()

    async def stop(self) -> None:
        await self.follower.stop()

    def live(self) -> list[Heartbeat]:
        return [hb for hb in self.heartbeats.values() if hb.age_s <= self.stale_after_s]

    def ready(self) -> list[Heartbeat]:
        return [hb for hb in self.live() if hb.status.ready]

    def shards(self) -> dict[str, set[int]]:
        """Ready replica groups and the embeddings partitions each holds. Every group answers
        every query, so this is how many answers an identify waits for."""
        groups: dict[str, set[int]] = {}
        for hb in self.ready():
            groups.setdefault(hb.status.group, set()).update(hb.status.partitions)
        return groups

    def covers_every_partition(self) -> bool:
        ready = self.ready()
        total = max((hb.status.total_partitions for hb in ready), default=0)
        covered = set().union(*self.shards().values()) if ready else set()
        return bool(ready) and (total == 0 or covered >= set(range(total)))

    def _apply(self, record: Any) -> None:
        replica_id = (record.key or b"").decode(errors="replace")  # only a tombstone uses it
        if record.value is None:
            self.heartbeats.pop(replica_id, None)
            return
        try:
            status = decode(record.value, ReplicaStatus).payload
        except (FacestreamError, ValidationError):
            return
        # Old heartbeats replayed at startup carry their own age.
        age = max(time.time() - record.timestamp / 1000, 0.0)
        self.heartbeats[status.replica_id] = Heartbeat(status, time.monotonic() - age)
