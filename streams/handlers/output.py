"""What a handler asks its processor to produce."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from core.tracing import HEADER, continue_trace
from schemas.envelope import Envelope


@dataclass(frozen=True)
class Output:
    topic: str
    key: str | None
    envelope: Envelope[Any]
    headers: dict[str, str] = field(default_factory=dict)


def traced(outputs: list[Output], incoming: dict[str, str]) -> list[Output]:
    """The outputs of one input record continue its trace (W3C traceparent)."""
    parent = incoming.get(HEADER)
    return [replace(o, headers={**o.headers, HEADER: continue_trace(parent)}) for o in outputs]
