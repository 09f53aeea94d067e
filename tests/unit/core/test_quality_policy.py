from __future__ import annotations

import pytest

from core.quality_policy import BARS, FILTERS, FLAG_BAR, bar, is_low_quality, resolve_filter


def test_every_filter_has_a_bar_and_they_grow_with_strictness() -> None:
    assert set(FILTERS) == set(BARS) == {"none", "low", "medium", "high", "auto"}
    assert bar("none") == 0.0
    assert bar("none") < bar("auto") <= bar("low") < bar("medium") < bar("high") <= 1.0


def test_the_request_wins_else_the_operations_default() -> None:
    assert resolve_filter(None, "auto") == "auto"
    assert resolve_filter("high", "auto") == "high"
    assert resolve_filter("none", "auto") == "none"
    with pytest.raises(ValueError):
        resolve_filter("strict", "auto")


def test_the_shipped_bars_are_the_calibrated_ones() -> None:
    # `facestream eval ../shared/faces --quality` (docs/engine.md, "Quality bars")
    assert BARS == {"none": 0.0, "auto": 0.05, "low": 0.15, "medium": 0.4, "high": 0.55}


def test_low_quality_flag_is_the_low_bar() -> None:
    assert BARS["low"] == FLAG_BAR
    assert is_low_quality(FLAG_BAR - 0.001) and not is_low_quality(FLAG_BAR)
    assert not is_low_quality(None)
