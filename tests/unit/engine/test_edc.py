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


def _rows(rank1_at: dict[float, float]) -> list[dict]:
    return [{"bar": b, "probes": 100, "rank1": rank1_at.get(b, 1.0), "tpir": 1.0} for b in CANDIDATE_BARS]


def test_auto_bar_stops_before_the_first_measurable_loss() -> None:
    table = {"blur": _rows({0.35: 0.99, 0.4: 0.9, 0.45: 0.8}), "grey": _rows({})}
    # 0.35 loses one probe in 100 (within the measurement's resolution); 0.4 loses ten.
    assert auto_bar(table) == 0.35
    assert auto_bar({"x": _rows({0.05: 0.5})}) == 0.0
