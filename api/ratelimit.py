"""Per-key token buckets: a steady rate with a burst allowance, answered 429 beyond it."""

from __future__ import annotations

import time
from dataclasses import dataclass

from core.errors import ErrorCode, FacestreamError


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, *, rate_per_s: float, burst: int) -> None:
        self.rate = rate_per_s
        self.burst = float(max(burst, 1))
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, key: str, *, now: float | None = None) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic() if now is None else now
        bucket = self._buckets.setdefault(key, _Bucket(tokens=self.burst, updated=now))
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens < 1.0:
            retry_after = (1.0 - bucket.tokens) / self.rate
            raise FacestreamError(ErrorCode.RATE_LIMITED, f"rate limit exceeded; retry in {retry_after:.2f}s")
        bucket.tokens -= 1.0
