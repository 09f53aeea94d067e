"""W3C traceparent handling."""

from __future__ import annotations

from core.tracing import continue_trace, new_traceparent, trace_id, valid


def test_a_child_keeps_the_trace_id_and_gets_a_new_span() -> None:
    parent = new_traceparent()
    child = continue_trace(parent)
    assert valid(parent) and valid(child)
    assert trace_id(child) == trace_id(parent)
    assert child.split("-")[2] != parent.split("-")[2]


def test_missing_or_malformed_context_starts_a_new_trace() -> None:
    for bad in (None, "", "garbage", "00-" + "0" * 32 + "-" + "1" * 16 + "-01"):
        assert valid(continue_trace(bad))
        assert not valid(bad)
