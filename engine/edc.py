"""Error-versus-Discard Characteristic (EDC, ISO/IEC 29794-1): how the false non-match rate at a
fixed threshold falls as the lowest-quality comparisons are discarded. Numpy only, no I/O.

A comparison's quality is the lower of its two samples' qualities (a pair is as good as its
worse image). For a discard fraction f the comparisons whose quality is below the f-quantile
are dropped and FNMR is measured on the rest. A quality measure is better than another when
its curve falls faster; a perfect measure drops FNMR to 0 by discarding exactly the fraction
of comparisons that are errors (the "oracle" line, `fnmr0 - f`).

The operational question (where to put a bar) is answered by `bar_where_discarding_stops_paying`:
the lowest quality bar beyond which discarding more removes no further errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_FRACTIONS: tuple[float, ...] = tuple(round(f, 2) for f in np.arange(0.0, 0.51, 0.02))


@dataclass(frozen=True)
class EdcPoint:
    discard: float  # fraction of comparisons discarded (requested)
    bar: float  # the quality bar that discards them (comparisons below it are dropped)
    kept: int
    fnmr: float


def pair_quality(q_a: np.ndarray, q_b: np.ndarray) -> np.ndarray:
    return np.minimum(np.asarray(q_a, np.float64), np.asarray(q_b, np.float64))


def edc(
    scores: np.ndarray,
    qualities: np.ndarray,
    *,
    threshold: float,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
) -> list[EdcPoint]:
    """EDC of genuine comparison `scores` with their pair `qualities` at `threshold`."""
    s = np.asarray(scores, np.float64)
    q = np.asarray(qualities, np.float64)
    if s.shape != q.shape:
        raise ValueError(f"{s.size} scores but {q.size} qualities")
    if s.size == 0:
        return []
    order = np.argsort(q, kind="stable")
    s, q = s[order], q[order]
    points = []
    for f in fractions:
        drop = min(round(f * s.size), s.size - 1)
        rest = s[drop:]
        points.append(
            EdcPoint(
                discard=float(f),
                bar=float(q[drop]),
                kept=int(rest.size),
                fnmr=float((rest < threshold).mean()),
            )
        )
    return points


def area_under_edc(points: Sequence[EdcPoint]) -> float:
    """Trapezoid area under FNMR over the discard fraction: lower is a better quality measure."""
    if len(points) < 2:
        return 0.0
    x = np.array([p.discard for p in points])
    y = np.array([p.fnmr for p in points])
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2))


def bar_where_discarding_stops_paying(points: Sequence[EdcPoint], *, tolerance: float = 0.0) -> EdcPoint:
    """The first point whose FNMR is within `tolerance` of the lowest FNMR on the curve: the
    least discarding that buys all the error reduction the measure can buy."""
    if not points:
        raise ValueError("empty EDC")
    best = min(p.fnmr for p in points)
    return next(p for p in points if p.fnmr <= best + tolerance)
