"""The caller-controlled quality filter: `none | low | medium | high | auto`, and its bars.

The facade resolves the filter once per request (the request's `quality_filter`, else the
operation's setting) and carries it in the Kafka command; workers apply the bar of the filter
they are handed and decide nothing themselves. A command produced without a filter (an edge box)
gets the operation's documented default from the schema: enroll `auto`, identify `none`.

Bars are thresholds on the engine's face quality in [0, 1] (the default pack: the recognizer's
embedding norm, 2.0 -> 0 and 4.0 -> 1; `engine.quality.norm_quality`). They were measured with
`facestream eval ../shared/faces --quality` (docs/engine.md, "Quality bars"), on the photos and
nine degraded copies of each:

- `auto` (0.05): the lowest bar at which enrollment does best; it refuses only faces whose
  inclusion measurably lowered rank-1 (blur at sigma = face width / 10: rank-1 0.18 with them
  enrolled, 0.25 without). On the seven everyday degradations it refuses no face at all.
- `low` / `medium` / `high` (0.15 / 0.4 / 0.55): where discarding the lowest-quality comparisons
  has bought a quarter, half and three quarters of the false-non-match reduction on the EDC
  (measured 0.15 / 0.39 / 0.53, rounded to 0.05).

Identification with `none` refuses nothing: the answer carries the face's quality and
`low_quality: true` when the score is under the `low` bar, the first at which discarding pays.
"""

from __future__ import annotations

from typing import cast, get_args

from schemas.events import QualityFilter

FILTERS: tuple[str, ...] = get_args(QualityFilter)

BARS: dict[str, float] = {
    "none": 0.0,
    "auto": 0.05,
    "low": 0.15,
    "medium": 0.4,
    "high": 0.55,
}

# The bar under which an answered face is flagged `low_quality`.
FLAG_BAR = BARS["low"]


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
