"""Pacing a background writer: throttle sleeps only inside ``paced``, by what it is ahead."""

from __future__ import annotations

import pytest

from index import pacing


def test_throttle_sleeps_by_how_far_ahead_of_the_pace_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    slept: list[float] = []
    monkeypatch.setattr(pacing.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(pacing.time, "sleep", slept.append)
    pacing.throttle(10**9)  # not paced: nothing
    with pacing.paced(1000):
        pacing.throttle(500)  # half a second of budget used at once
        now[0] += 2.0
        pacing.throttle(1000)  # 1.5 s of I/O in 2 s: behind the pace, no sleep
        pacing.throttle(2000)  # 3.5 s of I/O in 2 s
    pacing.throttle(10**9)
    assert slept == [pytest.approx(0.5), pytest.approx(1.5)]
