"""rank_persons: identification answers per person, not per face."""

from __future__ import annotations

import pytest

from core.errors import ErrorCode, FacestreamError
from index import Hit, PersonMatch, rank_persons


def test_best_similarity_per_person_sorted_and_cut() -> None:
    hits = [
        Hit("f1", "alice", 0.61),
        Hit("f2", "bob", 0.83),
        Hit("f3", "alice", 0.90),
        Hit("f4", "carol", 0.20),
        Hit("f5", "bob", 0.10),
    ]
    assert rank_persons(hits, 2) == [
        PersonMatch("alice", 0.90, "f3"),
        PersonMatch("bob", 0.83, "f2"),
    ]
    assert [m.person_id for m in rank_persons(hits, 10)] == ["alice", "bob", "carol"]


def test_ties_are_broken_by_person_id_and_empty_is_empty() -> None:
    hits = [Hit("f1", "zed", 0.5), Hit("f2", "amy", 0.5)]
    assert [m.person_id for m in rank_persons(hits, 2)] == ["amy", "zed"]
    assert rank_persons([], 3) == []


def test_k_must_be_positive() -> None:
    with pytest.raises(FacestreamError) as caught:
        rank_persons([Hit("f", "p", 0.1)], 0)
    assert caught.value.code is ErrorCode.INVALID_PARAMETER
