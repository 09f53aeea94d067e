"""Consumer lag, measured in the background by the API: Prometheus gauges and /stats."""

from __future__ import annotations

import asyncio
import contextlib

from core.lag import consumer_lag
from core.logging import get_logger
from core.metrics import Metrics
from core.settings import Settings
from schemas.api import ConsumerLagPublic

log = get_logger(__name__)


class LagMonitor:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.rows: list[ConsumerLagPublic] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._measure_forever(), name="lag-monitor")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _measure_forever(self) -> None:
        while True:
            try:
                self.rows = await asyncio.wait_for(consumer_lag(self.settings), timeout=30)
                for r in self.rows:
                    labels = (r.group, r.topic, str(r.partition))
                    self.metrics.consumer_lag.labels(*labels).set(r.lag)
                    self.metrics.consumer_lag_seconds.labels(*labels).set(r.lag_seconds)
            except Exception as exc:  # the broker being away is reported by /health, not here
                log.warning("lag_measurement_failed", error=repr(exc))
            await asyncio.sleep(self.settings.lag_interval_s)
