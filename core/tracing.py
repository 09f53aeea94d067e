"""W3C trace context (`traceparent`) carried in Kafka headers, so one identify is one trace.

Each stage that consumes a record and produces another continues the trace with a new span
id. Export to an OpenTelemetry collector is not built in: the ids are in every log line, and
a deployment that runs a collector can map them.
"""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar

HEADER = "traceparent"
_FORMAT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def new_traceparent() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def valid(traceparent: str | None) -> bool:
    match = _FORMAT.match(traceparent or "")
    return bool(match) and match.group(1) != "0" * 32 and match.group(2) != "0" * 16  # type: ignore[union-attr]


def continue_trace(traceparent: str | None) -> str:
    """A child span of `traceparent`, or a new trace when there is none (or it is malformed)."""
    match = _FORMAT.match(traceparent or "")
    if not match or not valid(traceparent):
        return new_traceparent()
    return f"00-{match.group(1)}-{secrets.token_hex(8)}-{match.group(3)}"


def trace_id(traceparent: str | None) -> str | None:
    match = _FORMAT.match(traceparent or "")
    return match.group(1) if match else None


# The trace of the request being served (set by the API middleware, read by the publisher).
current: ContextVar[str | None] = ContextVar("traceparent", default=None)
