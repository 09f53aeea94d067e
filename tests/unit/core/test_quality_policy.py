from __future__ import annotations

import pytest

from core.quality_policy import BARS, FILTERS, FLAG_BAR, bar, is_low_quality, resolve_filter


def test_every_filter_has_a_bar_and_they_grow_with_strictness() -> None:
    assert set(FILTERS) == set(BARS) == {"none", "low", "medium", "high", "auto"}
    assert bar("none") == 0.0
    assert bar("none") < bar("low") < bar("medium") < bar("high") <= 1.0
    assert bar("low") <= bar("auto") <= bar("medium")


def test_the_request_wins_else_the_operations_default() -> None:
    assert resolve_filter(None, "auto") == "auto"
    assert resolve_filter("high", "auto") == "high"
    assert resolve_filter("none", "auto") == "none"
    with pytest.raises(ValueError):
        resolve_filter("strict", "auto")


def test_low_quality_flag_is_the_auto_bar() -> None:
    assert BARS["auto"] == FLAG_BAR
    assert is_low_quality(FLAG_BAR - 0.001) and not is_low_quality(FLAG_BAR)
    assert not is_low_quality(None)
