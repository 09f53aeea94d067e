"""The supervisor's restart backoff doubles while a process keeps crashing and starts over once
it had run for a while."""

from __future__ import annotations

import pytest

from cli import stack
from cli.stack import Child


def test_backoff_doubles_then_resets_after_a_stable_run(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(stack.time, "monotonic", lambda: now[0])
    child = Child("w", ["true"], {})
    child.started_at = now[0]
    assert [child.next_backoff() for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    child.started_at = now[0]
    now[0] += stack.STABLE_AFTER_S
    assert child.next_backoff() == 1.0
    child.started_at = now[0]  # restarted, and crashes again at once
    assert child.next_backoff() == 2.0


def test_workers_join_with_a_static_instance_id() -> None:
    from core.settings import Settings
    from streams.faust_app import make_faust_app

    settings = Settings(_env_file=None, instance_id="host-7", topic_prefix="fs")  # type: ignore[call-arg]
    assert make_faust_app(settings, "identify").conf.consumer_group_instance_id == "fs-identify-host-7"
    off = Settings(_env_file=None, instance_id="host-7", static_membership=False)  # type: ignore[call-arg]
    assert make_faust_app(off, "identify").conf.consumer_group_instance_id is None
