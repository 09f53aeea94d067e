"""The caller-controlled quality filter: `none | low | medium | high | auto`, and its bars.

The facade resolves the filter once per request (the request's `quality_filter`, else the
operation's setting) and carries it in the Kafka command; workers apply the bar of the filter
they are handed and decide nothing themselves. A command produced without a filter (an edge box)
gets the operation's documented default from the schema: enroll `auto`, identify `none`.

Bars are thresholds on the engine's quality score (`engine.quality.DefaultQuality`, in [0, 1]).
They were set from the Error-versus-Discard Characteristic (`facestream eval --quality`,
docs/engine.md "Quality bars"): `auto` where discarding stops lowering the false non-match
rate on the degraded sample set; `low` / `medium` / `high` progressively stricter.

Identification with `none` refuses nothing: the answer carries the face's quality and
`low_quality: true` when the score is under the `auto` bar, so the caller can decide.
"""

from __future__ import annotations

from typing import cast, get_args

from schemas.events import QualityFilter

FILTERS: tuple[str, ...] = get_args(QualityFilter)

BARS: dict[str, float] = {
    "none": 0.0,
    "low": 0.05,
    "auto": 0.10,
    "medium": 0.25,
    "high": 0.5,
}

# The bar under which an answered face is flagged `low_quality`.
FLAG_BAR = BARS["auto"]


def bar(quality_filter: str) -> float:
    """The minimum quality score a face needs under `quality_filter`."""
    try:
        return BARS[quality_filter]
    except KeyError:
        raise ValueError(f"unknown quality filter {quality_filter!r}; expected one of {FILTERS}") from None


def is_low_quality(quality: float | None) -> bool:
    return quality is not None and quality < FLAG_BAR


def resolve_filter(requested: str | None, default: str) -> QualityFilter:
    """The request's filter, else the operation's setting. Called once, by the stage that
    accepts the request (the facade; a worker only for a command produced without one)."""
    chosen = requested or default
    bar(chosen)  # validates
    return cast(QualityFilter, chosen)
