"""`facestream eval --quality`: which quality signal predicts recognition errors, and where the
quality bars go. Measured, never assumed:

1. Every photo and its degraded copies (`engine.degrade`) go through the engine without a bar.
2. For each signal (the image heuristic, and the recognizer's embedding norm mapped to [0, 1]
   by the pack's `quality_norm`), the EDC of the genuine probe-vs-gallery comparisons at the
   operating threshold (`engine.edc`); the smaller area under the curve wins.
3. Enrollment: each variant's faces alone form the gallery and the clean photos probe it. For
   each candidate bar: templates kept, rank-1, true-positive identification rate at the
   threshold and false accepts. Refusing a face is worth it only where this does not fall.
4. Bars (on the winning signal): `auto` is the lowest bar at which enrollment does best (rank-1
   hits plus true positives at the threshold, summed over the variants), and only if that is
   more than one probe better than enrolling everything: it refuses only faces whose inclusion
   measurably lowers rank-1 or TPIR. `low` / `medium` / `high` are where the EDC has bought a
   quarter, half and three quarters of the FNMR reduction that discarding can buy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.decode import decode_image
from engine.edc import EdcPoint, area_under_edc, edc, pair_quality
from engine.pipeline import FaceEngine
from engine.quality import norm_quality
from engine.robustness import (
    CLEAN,
    Comparisons,
    Photo,
    Probe,
    comparisons,
    rank1_hits,
    run_probes,
    summarise,
    variant_images,
)

CANDIDATE_BARS: tuple[float, ...] = tuple(round(b, 2) for b in np.arange(0.0, 0.81, 0.05))
FRACTIONS: tuple[float, ...] = tuple(round(f, 2) for f in np.arange(0.0, 0.61, 0.02))


def signal_values(probes: Sequence[Probe], signal: str, span: tuple[float, float] | None) -> np.ndarray:
    if signal == "heuristic":
        return np.array([p.quality for p in probes])
    if span is None:
        raise ValueError("the norm signal needs the pack's quality_norm span")
    return norm_quality(np.array([p.norm for p in probes]), span)


def genuine_edc(comps: Comparisons, q: np.ndarray, *, threshold: float) -> list[EdcPoint]:
    g = comps.genuine
    pq = pair_quality(q[comps.probe[g]], q[comps.gallery[g]])
    return edc(comps.score[g], pq, threshold=threshold, fractions=FRACTIONS)


def enrollment_at_bar(
    probes: Sequence[Probe], q: np.ndarray, *, variant: str, bar: float, threshold: float
) -> dict[str, Any]:
    """The variant's faces at or above `bar` are the gallery; clean photos of other sources probe
    it. Rank-1 and TPIR count every probe (a person left without a template is a miss)."""
    usable = [i for i, p in enumerate(probes) if p.vector is not None]
    gallery = [i for i in usable if probes[i].variant == variant and q[i] >= bar]
    clean = [i for i, p in enumerate(probes) if p.variant == CLEAN and p.vector is not None]
    hits = tp = false_accepts = total = 0
    if gallery:
        g = np.stack([probes[i].vector for i in gallery])  # type: ignore[misc]
        ids = np.array([probes[i].identity for i in gallery])
        sources = np.array([probes[i].source for i in gallery])
    for i in clean:
        probe = probes[i]
        total += 1
        if not gallery:
            continue
        sims = np.where(sources != probe.source, g @ probe.vector, -np.inf)
        best = int(np.argmax(sims))
        if not np.isfinite(sims[best]):
            continue
        if ids[best] == probe.identity:
            hits += 1
            tp += int(sims[best] >= threshold)
        else:
            false_accepts += int(sims[best] >= threshold)
    return {
        "bar": bar,
        "hits": hits,
        "true_positives": tp,
        "templates": len(gallery),
        "rank1": round(hits / total, 4) if total else None,
        "tpir": round(tp / total, 4) if total else None,
        "false_accepts": false_accepts,
        "probes": total,
    }


def auto_bar(table: dict[str, list[dict[str, Any]]]) -> float:
    """The lowest candidate bar with the most rank-1 hits plus true positives over all variants,
    when that beats enrolling everything (bar 0) by more than one probe; else 0."""
    totals = [
        sum(rows[i]["hits"] + rows[i]["true_positives"] for rows in table.values())
        for i in range(len(CANDIDATE_BARS))
    ]
    best = max(range(len(totals)), key=lambda i: (totals[i], -i))
    return CANDIDATE_BARS[best] if totals[best] > totals[0] + 1 else 0.0


def edc_bars(points: Sequence[EdcPoint]) -> dict[str, float]:
    """low / medium / high: the bars at which discarding has bought 25 / 50 / 75% of the FNMR
    reduction the curve reaches."""
    start, best = points[0].fnmr, min(p.fnmr for p in points)
    bars = {}
    for name, share in (("low", 0.25), ("medium", 0.5), ("high", 0.75)):
        target = start - share * (start - best)
        bars[name] = round(next(p.bar for p in points if p.fnmr <= target + 1e-12), 2)
    return bars


def face_widths(engine: FaceEngine, photos: Sequence[Photo]) -> list[float | None]:
    """The face's width in the decoded photo's pixels, from the engine's own clean detection."""
    widths: list[float | None] = []
    for photo in photos:
        data = photo.path.read_bytes()
        try:
            face = engine.prepare(data).faces[0]
        except Exception:
            widths.append(None)
            continue
        widths.append(face.bbox.width * decode_image(data, engine.limits).scale)
    return widths


def quality_report(
    engine: FaceEngine,
    photos: Sequence[Photo],
    variants: Sequence[str],
    *,
    threshold: float,
    span: tuple[float, float] | None,
) -> dict[str, Any]:
    widths = face_widths(engine, photos)
    images = variant_images(photos, variants, face_widths=widths, limits=engine.limits)
    probes = run_probes(engine, photos, images)
    comps = comparisons(probes)
    hits = rank1_hits(probes, comps)
    signals = ["heuristic"] + (["norm"] if span is not None else [])
    curves = {s: genuine_edc(comps, signal_values(probes, s, span), threshold=threshold) for s in signals}
    areas = {s: round(area_under_edc(curves[s]), 5) for s in signals}
    best = min(signals, key=lambda s: areas[s])
    q = signal_values(probes, best, span)
    enrollment = {
        v: [enrollment_at_bar(probes, q, variant=v, bar=b, threshold=threshold) for b in CANDIDATE_BARS]
        for v in variants
    }
    bars = {"none": 0.0, **edc_bars(curves[best]), "auto": auto_bar(enrollment)}
    per_variant = []
    for v in (CLEAN, *variants):
        row = summarise(probes, v, comps, hits)
        mine = [i for i, p in enumerate(probes) if p.variant == v and p.vector is not None]
        values = q[mine] if mine else np.zeros(1)
        row.update(
            quality_p05=round(float(np.percentile(values, 5)), 3),
            quality_median=round(float(np.median(values)), 3),
            quality_min=round(float(values.min()), 3),
            # Identify with the default filter (none) refuses nothing; with `auto` it would refuse:
            refused_at_auto=int((values < bars["auto"]).sum()),
            correct_refused_at_auto=sum(1 for i in mine if hits.get(i, False) and q[i] < bars["auto"]),
        )
        per_variant.append(row)
    return {
        "threshold": threshold,
        "variants": [CLEAN, *variants],
        "signals": {s: {"edc_area": areas[s], "edc": [p.__dict__ for p in curves[s]]} for s in signals},
        "chosen_signal": best,
        "per_variant": per_variant,
        "enrollment": enrollment,
        "bars": bars,
    }
