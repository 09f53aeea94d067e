"""Verification and identification metrics from embeddings and scores: numpy only, no I/O.

Conventions: scores are cosine similarities; a pair is *accepted* when score >= threshold
(as identify does: below the threshold is `unknown`).

    FAR(t) = #impostor pairs with score >= t / #impostor pairs
    FRR(t) = #genuine pairs with score <  t / #genuine pairs,   TAR = 1 - FRR

With N impostor pairs the smallest non-zero FAR that can be observed is 1/N; a FAR target
below that is *not resolved*: a threshold can be chosen that accepts no impostor of this set,
but nothing here says its real FAR is as low as the target. Reports say so explicitly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

DEFAULT_FAR_TARGETS = (1e-2, 1e-3, 1e-4)


def pair_scores(embeddings: np.ndarray, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Cosine scores of all unordered pairs, split into (genuine, impostor).

    `embeddings` rows must be L2-normalised (the engine's are)."""
    vectors = np.asarray(embeddings, np.float64)
    ids = np.asarray(labels)
    if len(vectors) != len(ids):
        raise ValueError(f"{len(vectors)} embeddings but {len(ids)} labels")
    sims = vectors @ vectors.T
    upper = np.triu_indices(len(ids), 1)
    same = (ids[:, None] == ids[None, :])[upper]
    scores = sims[upper]
    return scores[same], scores[~same]


def rank1_leave_one_out(embeddings: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Each sample is a probe against all others as the gallery; a hit when the nearest
    other sample has the same label. Probes whose identity has no other sample cannot hit
    and are left out (counted in `skipped_singletons`)."""
    vectors = np.asarray(embeddings, np.float64)
    ids = np.asarray(labels)
    counts = {label: int((ids == label).sum()) for label in set(ids.tolist())}
    probes = np.array([counts[label] > 1 for label in ids.tolist()], bool)
    if len(ids) < 2 or not probes.any():
        return {"accuracy": None, "probes": 0, "hits": 0, "skipped_singletons": int((~probes).sum())}
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    nearest = ids[sims.argmax(axis=1)]
    hits = int((nearest[probes] == ids[probes]).sum())
    total = int(probes.sum())
    return {
        "accuracy": hits / total,
        "probes": total,
        "hits": hits,
        "skipped_singletons": int((~probes).sum()),
    }


def summary(scores: np.ndarray) -> dict[str, float | int | None]:
    s = np.asarray(scores, np.float64)
    if s.size == 0:
        return {"count": 0}
    q = np.percentile(s, [1, 5, 50, 95, 99])
    return {
        "count": int(s.size),
        "mean": float(s.mean()),
        "std": float(s.std()),
        "min": float(s.min()),
        "p01": float(q[0]),
        "p05": float(q[1]),
        "median": float(q[2]),
        "p95": float(q[3]),
        "p99": float(q[4]),
        "max": float(s.max()),
    }


def far(impostor: np.ndarray, threshold: float) -> float:
    imp = np.asarray(impostor)
    return float((imp >= threshold).mean()) if imp.size else float("nan")


def frr(genuine: np.ndarray, threshold: float) -> float:
    gen = np.asarray(genuine)
    return float((gen < threshold).mean()) if gen.size else float("nan")


def min_resolvable_far(n_impostor: int) -> float | None:
    return 1.0 / n_impostor if n_impostor > 0 else None


def threshold_for_far(impostor: np.ndarray, target_far: float) -> float:
    """The lowest threshold whose empirical FAR is <= target_far.

    With impostors sorted high to low, at most k = floor(target * N) of them may be accepted,
    so the threshold sits just above the (k+1)-th highest impostor score. When the target is
    below 1/N, k = 0 and the threshold sits just above the highest impostor (unresolved)."""
    imp = np.sort(np.asarray(impostor, np.float64))[::-1]
    if imp.size == 0:
        raise ValueError("no impostor scores: a threshold for a FAR cannot be chosen")
    if not 0.0 < target_far < 1.0:
        raise ValueError(f"target FAR must be in (0, 1), got {target_far}")
    allowed = math.floor(target_far * imp.size + 1e-9)
    return float(np.nextafter(imp[allowed], np.inf)) if allowed < imp.size else float(imp[-1])


def operating_point(genuine: np.ndarray, impostor: np.ndarray, target_far: float) -> dict[str, Any]:
    """Threshold, achieved FAR and TAR for one FAR target, with whether the set can resolve it."""
    n_imp = int(np.asarray(impostor).size)
    threshold = threshold_for_far(impostor, target_far)
    floor = min_resolvable_far(n_imp)
    resolved = floor is not None and target_far >= floor
    point: dict[str, Any] = {
        "target_far": target_far,
        "threshold": threshold,
        "far": far(impostor, threshold),
        "tar": 1.0 - frr(genuine, threshold),
        "resolved": resolved,
        # How many impostor accepts the target allows on this set: 0-2 is a fragile estimate.
        "impostor_accepts_allowed": math.floor(target_far * n_imp + 1e-9),
    }
    if not resolved:
        point["note"] = (
            f"{n_imp} impostor pairs resolve FAR down to {floor:.2g} only; this threshold accepts "
            f"none of them, but its FAR at {target_far:g} is not demonstrated"
        )
    return point


def roc_points(
    genuine: np.ndarray, impostor: np.ndarray, thresholds: np.ndarray | None = None
) -> list[dict[str, float]]:
    """FAR, FRR and TAR at each threshold (one list serves ROC: TAR vs FAR, and DET: FRR vs FAR).

    Default thresholds: -1 to 1 in steps of 0.01."""
    ts = np.round(np.linspace(-1.0, 1.0, 201), 2) if thresholds is None else np.asarray(thresholds)
    gen = np.sort(np.asarray(genuine, np.float64))
    imp = np.sort(np.asarray(impostor, np.float64))
    # searchsorted(side="left") counts scores < t: rejected pairs.
    gen_rejected = np.searchsorted(gen, ts, side="left") / max(gen.size, 1)
    imp_accepted = 1.0 - np.searchsorted(imp, ts, side="left") / max(imp.size, 1)
    return [
        {"threshold": float(t), "far": float(a), "frr": float(r), "tar": float(1.0 - r)}
        for t, a, r in zip(ts, imp_accepted, gen_rejected, strict=True)
    ]


def equal_error_rate(genuine: np.ndarray, impostor: np.ndarray) -> dict[str, float]:
    """The point where FAR and FRR cross, searched over every observed score."""
    candidates = np.unique(np.concatenate([np.asarray(genuine), np.asarray(impostor)]))
    points = roc_points(genuine, impostor, candidates)
    best = min(points, key=lambda p: (abs(p["far"] - p["frr"]), p["threshold"]))
    return {"threshold": best["threshold"], "eer": (best["far"] + best["frr"]) / 2}


def evaluate(
    embeddings: np.ndarray,
    labels: Sequence[str],
    *,
    target_far: float = 1e-3,
    far_targets: Sequence[float] = DEFAULT_FAR_TARGETS,
) -> dict[str, Any]:
    """Everything `facestream eval` reports, as plain JSON-able values."""
    genuine, impostor = pair_scores(embeddings, labels)
    if genuine.size == 0 or impostor.size == 0:
        raise ValueError("need at least two identities and one identity with two samples")
    recommended = operating_point(genuine, impostor, target_far)
    return {
        "samples": len(labels),
        "identities": len(set(labels)),
        "rank1": rank1_leave_one_out(embeddings, labels),
        "pairs": {"genuine": int(genuine.size), "impostor": int(impostor.size)},
        "min_resolvable_far": min_resolvable_far(int(impostor.size)),
        "genuine": summary(genuine),
        "impostor": summary(impostor),
        "eer": equal_error_rate(genuine, impostor),
        "tar_at_far": [operating_point(genuine, impostor, f) for f in far_targets],
        "recommended": recommended,
        "roc": roc_points(genuine, impostor),
    }
