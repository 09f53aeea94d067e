"""What a handler asks its processor to produce."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemas.envelope import Envelope


@dataclass(frozen=True)
class Output:
    topic: str
    key: str | None
    envelope: Envelope[Any]
    headers: dict[str, str] = field(default_factory=dict)
