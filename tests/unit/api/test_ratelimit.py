"""Per-key token buckets."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.ratelimit import RateLimiter
from core.errors import FacestreamError
from tests.unit.api.factories import ADMIN, VIEWER, client, make_app
from tests.unit.api.test_errors import expect


def test_burst_then_refusal_then_refill() -> None:
    limiter = RateLimiter(rate_per_s=2.0, burst=3)
    for _ in range(3):
        limiter.acquire("k", now=0.0)
    with pytest.raises(FacestreamError) as refused:
        limiter.acquire("k", now=0.0)
    assert refused.value.code.value == "rate_limited"
    limiter.acquire("k", now=0.5)  # one token back after 1 / rate seconds


def test_keys_have_their_own_buckets() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=1)
    limiter.acquire("a", now=0.0)
    limiter.acquire("b", now=0.0)


def test_zero_rate_disables_limiting() -> None:
    limiter = RateLimiter(rate_per_s=0, burst=1)
    for _ in range(100):
        limiter.acquire("k", now=0.0)


def test_api_answers_429_rate_limited_past_the_burst(tmp_path: Path) -> None:
    app = make_app(tmp_path, rate_limit_per_s=0.001, rate_limit_burst=2)
    viewer = client(app, VIEWER)
    assert viewer.get("/persons").status_code == 200
    assert viewer.get("/persons").status_code == 200
    expect(viewer.get("/persons"), 429, "rate_limited")
    assert client(app, ADMIN).get("/persons").status_code == 200
