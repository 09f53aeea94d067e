from __future__ import annotations

import pytest

from core.errors import ErrorCode, FacestreamError
from engine.policy import select_faces

FACES = ["small-confident", "big-unsure", "medium"]
AREA = [100.0, 900.0, 400.0]
SCORE = [0.99, 0.7, 0.9]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("largest", ["big-unsure"]),
        ("best_score", ["small-confident"]),
        ("all", ["big-unsure", "medium", "small-confident"]),
    ],
)
def test_policies(policy: str, expected: list[str]) -> None:
    assert select_faces(FACES, policy, area=AREA, score=SCORE) == expected


def test_reject_raises_multiple_faces_but_accepts_one() -> None:
    with pytest.raises(FacestreamError) as info:
        select_faces(FACES, "reject", area=AREA, score=SCORE)
    assert info.value.code == ErrorCode.MULTIPLE_FACES
    assert select_faces(["only"], "reject", area=[1.0], score=[0.9]) == ["only"]


def test_no_face() -> None:
    with pytest.raises(FacestreamError) as info:
        select_faces([], "largest", area=[], score=[])
    assert info.value.code == ErrorCode.NO_FACE


def test_unknown_policy_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        select_faces(["only"], "random", area=[1.0], score=[0.9])
