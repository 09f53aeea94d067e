from __future__ import annotations

import math

import numpy as np
import pytest

from engine.evaluation import (
    equal_error_rate,
    evaluate,
    far,
    frr,
    operating_point,
    pair_scores,
    rank1_leave_one_out,
    roc_points,
    summary,
    threshold_for_far,
)


def _unit(rows: list[list[float]]) -> np.ndarray:
    v = np.asarray(rows, np.float64)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _synthetic(n_ids: int = 20, per_id: int = 4, noise: float = 0.3, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_ids, 64))
    vectors = np.repeat(centres, per_id, axis=0) + noise * rng.standard_normal((n_ids * per_id, 64))
    labels = [f"p{i}" for i in range(n_ids) for _ in range(per_id)]
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True), labels


def test_pair_scores_split_genuine_and_impostor() -> None:
    vectors = _unit([[1, 0], [1, 0.1], [0, 1]])
    genuine, impostor = pair_scores(vectors, ["a", "a", "b"])
    assert genuine.shape == (1,) and genuine[0] == pytest.approx(1 / math.sqrt(1.01))
    assert sorted(impostor.round(6)) == sorted([0.0, round(0.1 / math.sqrt(1.01), 6)])
    with pytest.raises(ValueError):
        pair_scores(vectors, ["a", "b"])


def test_far_frr_use_accept_at_or_above_threshold() -> None:
    assert far(np.array([0.1, 0.5, 0.5, 0.9]), 0.5) == 0.75
    assert frr(np.array([0.1, 0.5, 0.9]), 0.5) == pytest.approx(1 / 3)


def test_threshold_for_far_accepts_at_most_the_allowed_impostors() -> None:
    impostor = np.linspace(-0.5, 0.5, 1000)  # distinct scores
    for target in (0.1, 0.01, 0.005, 0.001):
        t = threshold_for_far(impostor, target)
        assert far(impostor, t) <= target
        # and it is the lowest such threshold: one step down accepts one impostor too many
        assert far(impostor, np.nextafter(t, -np.inf) - 1e-12) > target or t == impostor.min()


def test_threshold_below_resolution_sits_above_every_impostor() -> None:
    impostor = np.array([0.1, 0.2, 0.3])
    t = threshold_for_far(impostor, 1e-3)
    assert t > 0.3 and far(impostor, t) == 0.0
    point = operating_point(np.array([0.8, 0.9]), impostor, 1e-3)
    assert point["resolved"] is False
    assert "not demonstrated" in point["note"]
    assert point["impostor_accepts_allowed"] == 0


def test_threshold_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        threshold_for_far(np.array([]), 0.01)
    with pytest.raises(ValueError):
        threshold_for_far(np.array([0.1]), 0.0)


def test_resolved_point_reports_tar() -> None:
    genuine = np.array([0.2, 0.6, 0.7, 0.8])
    impostor = np.linspace(-0.3, 0.3, 100)
    point = operating_point(genuine, impostor, 0.01)
    assert point["resolved"] is True and point["impostor_accepts_allowed"] == 1
    assert point["far"] <= 0.01
    assert point["tar"] == 0.75


def test_rank1_leave_one_out_and_singletons() -> None:
    vectors = _unit([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [1, 1]])
    result = rank1_leave_one_out(vectors, ["a", "a", "b", "b", "solo"])
    assert result == {"accuracy": 1.0, "probes": 4, "hits": 4, "skipped_singletons": 1}
    swapped = rank1_leave_one_out(vectors, ["a", "b", "a", "b", "solo"])
    assert swapped["accuracy"] == 0.0
    assert rank1_leave_one_out(vectors[:1], ["a"])["accuracy"] is None


def test_roc_points_are_monotone_and_bounded() -> None:
    vectors, labels = _synthetic()
    genuine, impostor = pair_scores(vectors, labels)
    points = roc_points(genuine, impostor)
    assert len(points) == 201 and points[0]["threshold"] == -1.0 and points[-1]["threshold"] == 1.0
    fars = [p["far"] for p in points]
    frrs = [p["frr"] for p in points]
    assert fars == sorted(fars, reverse=True) and frrs == sorted(frrs)
    assert fars[0] == 1.0 and frrs[0] == 0.0
    assert all(p["tar"] == pytest.approx(1 - p["frr"]) for p in points)


def test_eer_of_separable_and_overlapping_scores() -> None:
    assert equal_error_rate(np.array([0.8, 0.9]), np.array([0.1, 0.2]))["eer"] == 0.0
    overlap = equal_error_rate(np.array([0.1, 0.3, 0.5, 0.7]), np.array([0.0, 0.2, 0.4, 0.6]))
    assert 0.25 <= overlap["eer"] <= 0.5  # interleaved scores: about chance


def test_summary() -> None:
    s = summary(np.arange(101, dtype=float))
    assert s["count"] == 101 and s["median"] == 50 and s["min"] == 0 and s["max"] == 100
    assert summary(np.array([])) == {"count": 0}


def test_evaluate_report_shape_on_synthetic_embeddings() -> None:
    vectors, labels = _synthetic(n_ids=30, per_id=3)
    report = evaluate(vectors, labels, target_far=1e-2)
    assert report["samples"] == 90 and report["identities"] == 30
    assert report["pairs"] == {"genuine": 90, "impostor": 90 * 89 // 2 - 90}
    assert report["min_resolvable_far"] == pytest.approx(1 / report["pairs"]["impostor"])
    assert report["rank1"]["accuracy"] == 1.0
    assert [p["target_far"] for p in report["tar_at_far"]] == [1e-2, 1e-3, 1e-4]
    assert [p["resolved"] for p in report["tar_at_far"]] == [True, True, False]
    assert report["recommended"]["target_far"] == 1e-2
    assert report["genuine"]["mean"] > report["impostor"]["mean"]
    with pytest.raises(ValueError):
        evaluate(vectors[:3], ["a", "b", "c"])  # no genuine pair
