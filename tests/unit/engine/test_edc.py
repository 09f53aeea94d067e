from __future__ import annotations

import numpy as np
import pytest

from engine.edc import area_under_edc, bar_where_discarding_stops_paying, edc, pair_quality
from engine.quality_eval import CANDIDATE_BARS, auto_bar, edc_bars


def test_a_quality_that_ranks_the_errors_lowest_removes_them_first() -> None:
    scores = np.array([0.1, 0.2, 0.8, 0.9, 0.7, 0.6, 0.85, 0.75, 0.65, 0.95])
    good_q = np.where(scores < 0.45, 0.1, 0.9)  # errors have the lowest quality
    bad_q = np.where(scores < 0.45, 0.9, 0.1)  # errors have the highest quality
    fractions = (0.0, 0.1, 0.2, 0.3)
    good = edc(scores, good_q, threshold=0.45, fractions=fractions)
    bad = edc(scores, bad_q, threshold=0.45, fractions=fractions)
    assert [p.fnmr for p in good] == pytest.approx([0.2, 1 / 9, 0.0, 0.0])
    assert bad[0].fnmr == pytest.approx(0.2) and bad[-1].fnmr > 0.2
    assert area_under_edc(good) < area_under_edc(bad)
    assert bar_where_discarding_stops_paying(good).discard == 0.2


def test_pair_quality_is_the_worse_sample() -> None:
    assert list(pair_quality(np.array([0.2, 0.9]), np.array([0.5, 0.4]))) == [0.2, 0.4]


def test_edc_bars_split_the_reduction_in_quarters() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.4] + [0.9] * 16)
    quality = np.linspace(0.0, 0.95, 20)  # the four errors are the four lowest
    points = edc(scores, quality, threshold=0.45, fractions=tuple(i / 20 for i in range(11)))
    # FNMR 4/20 -> 3/19 -> 2/18 -> 1/17 -> 0 as the bar passes 0.05, 0.10, 0.15, 0.20
    assert edc_bars(points) == {"low": 0.1, "medium": 0.15, "high": 0.2}


def _rows(hits_at: dict[float, int]) -> list[dict]:
    return [{"bar": b, "hits": hits_at.get(b, 80), "true_positives": 80} for b in CANDIDATE_BARS]


def test_auto_bar_is_the_lowest_bar_that_measurably_helps_enrollment() -> None:
    # Refusing the faces under 0.05 gains 4 probes; raising the bar further gains nothing more.
    assert auto_bar({"blur": _rows({0.0: 76, 0.1: 78}), "grey": _rows({})}) == 0.05
    # One probe is within the measurement's noise: no bar.
    assert auto_bar({"x": _rows({0.0: 79})}) == 0.0
    # A bar that only loses faces is never chosen.
    assert auto_bar({"x": _rows({0.3: 70, 0.35: 60})}) == 0.0
