"""Replies go only to reply topics that exist.

A reply topic can be gone (a retired facade, a producer's typo). Producing to it would block
on metadata and fail the whole batch again after every restart; nobody waits for that reply,
so it is dropped, counted and logged instead.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence

from core.logging import get_logger
from core.metrics import Metrics
from core.settings import Settings
from core.topics import list_topic_names
from streams.handlers.output import Output

log = get_logger(__name__)


class ReplyTopics:
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        *,
        lister: Callable[[Settings], Awaitable[set[str]]] = list_topic_names,
        min_refresh_s: float = 2.0,
    ) -> None:
        self.settings = settings
        self.lister = lister
        self.metrics = metrics
        self.min_refresh_s = min_refresh_s
        self._known: set[str] = set()
        self._refreshed_at = float("-inf")

    async def deliverable(self, outputs: Sequence[Output]) -> list[Output]:
        topics = self.settings.topics
        wanted = {o.topic for o in outputs if topics.is_reply_topic(o.topic)}
        if wanted - self._known and time.monotonic() - self._refreshed_at >= self.min_refresh_s:
            self._known = await self.lister(self.settings)
            self._refreshed_at = time.monotonic()
        kept = []
        for output in outputs:
            if topics.is_reply_topic(output.topic) and output.topic not in self._known:
                self.metrics.errors.labels("reply", "reply_topic_missing").inc()
                log.warning(
                    "reply_dropped", topic=output.topic, correlation_id=output.envelope.correlation_id
                )
                continue
            kept.append(output)
        return kept
