"""The membership watch's verdict: out of the group for the whole limit, and only then; a broker
that does not answer neither counts as absence nor clears it."""

from __future__ import annotations

import pytest

from core.settings import Settings
from streams import group_membership
from streams.group_membership import MembershipWatch, NotInGroup


class Answers:
    """What the broker says of the group at each check (None: no answer), and the clock."""

    def __init__(self, *said: bool | None) -> None:
        self.said = list(said)
        self.now = 0.0

    def member(self) -> bool | None:
        return self.said.pop(0)


def _watch(answers: Answers, monkeypatch: pytest.MonkeyPatch) -> MembershipWatch:
    monkeypatch.setattr(group_membership, "AdminClient", lambda config: object())
    watch = MembershipWatch(
        Settings(_env_file=None),  # type: ignore[call-arg]
        group_id="g",
        client_id="me",
        absent_limit_s=60.0,
        clock=lambda: answers.now,
    )
    monkeypatch.setattr(watch, "_is_member", answers.member)
    return watch


async def _checks(watch: MembershipWatch, answers: Answers, every_s: float, count: int) -> None:
    for _ in range(count):
        await watch.check()
        answers.now += every_s


async def test_out_of_the_group_for_the_whole_limit_ends_it(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = Answers(*[False] * 8)
    watch = _watch(answers, monkeypatch)
    await _checks(watch, answers, 10.0, 6)  # absent from t=0 to t=50
    answers.now = 60.0
    with pytest.raises(NotInGroup, match="me has not been a member of group g for 60s"):
        await watch.check()


async def test_a_membership_in_between_starts_the_count_again(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = Answers(False, False, False, False, True, False, False, False, False)
    watch = _watch(answers, monkeypatch)
    await _checks(watch, answers, 15.0, 9)  # absent 0-45 s, a member at 60, absent 75-120 s


async def test_no_answer_from_the_broker_is_no_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = Answers(False, None, None, None, None, None, None, None, False)
    watch = _watch(answers, monkeypatch)
    await _checks(watch, answers, 10.0, 8)
    answers.now = 61.0
    with pytest.raises(NotInGroup):  # the absence seen at t=0 still stands
        await watch.check()
