"""Metrics against hand-computed values: empty, perfect, no hit, fewer than K, the original HIT."""

from __future__ import annotations

import math

import numpy as np
import pytest

from segue.evaluation.metrics import (
    catalogue_coverage,
    f1_at_k,
    higher_is_better,
    hit_rate_at_k,
    metric_key,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)

ALL = (precision_at_k, recall_at_k, f1_at_k, hit_rate_at_k, ndcg_at_k, mrr_at_k)


def _array(values: list[int]) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def test_no_relevant_items_scores_zero_everywhere() -> None:
    for metric in ALL:
        assert metric(_array([1, 2, 3]), _array([]), 3) == 0.0


def test_empty_ranking_scores_zero_everywhere() -> None:
    for metric in ALL:
        assert metric(_array([]), _array([1, 2]), 3) == 0.0


def test_perfect_ranking() -> None:
    ranked, relevant = _array([4, 7, 9]), _array([9, 4, 7])
    assert precision_at_k(ranked, relevant, 3) == 1.0
    assert recall_at_k(ranked, relevant, 3) == 1.0
    assert f1_at_k(ranked, relevant, 3) == 1.0
    assert ndcg_at_k(ranked, relevant, 3) == pytest.approx(1.0)
    assert mrr_at_k(ranked, relevant, 3) == 1.0


def test_no_hit() -> None:
    ranked, relevant = _array([1, 2, 3]), _array([8])
    for metric in ALL:
        assert metric(ranked, relevant, 3) == 0.0


def test_one_hit_in_second_place() -> None:
    ranked, relevant = _array([5, 8, 1, 2]), _array([8, 30])
    assert precision_at_k(ranked, relevant, 4) == 0.25
    assert recall_at_k(ranked, relevant, 4) == 0.5
    assert f1_at_k(ranked, relevant, 4) == pytest.approx(2 * 0.25 * 0.5 / 0.75)
    assert hit_rate_at_k(ranked, relevant, 4) == 1.0
    assert mrr_at_k(ranked, relevant, 4) == 0.5
    # DCG = 1/log2(3); ideal with two relevant items = 1 + 1/log2(3)
    expected = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(ranked, relevant, 4) == pytest.approx(expected)


def test_fewer_than_k_recommendations() -> None:
    """Empty slots (-1) never hit; precision still divides by K."""
    ranked, relevant = _array([3, -1, -1]), _array([3])
    assert precision_at_k(ranked, relevant, 3) == pytest.approx(1 / 3)
    assert hit_rate_at_k(ranked, relevant, 3) == 1.0
    assert mrr_at_k(ranked, relevant, 3) == 1.0


def test_ideal_dcg_is_capped_at_k() -> None:
    """Five relevant items and K=2 with both slots hit is a perfect list."""
    assert ndcg_at_k(_array([1, 2]), _array([1, 2, 3, 4, 5]), 2) == pytest.approx(1.0)
    assert recall_at_k(_array([1, 2]), _array([1, 2, 3, 4, 5]), 2) == pytest.approx(0.4)


def test_recall_with_ten_held_out_is_the_original_hit() -> None:
    """The original HIT: |recommended top 10 ∩ held-out 10| / 10."""
    held_out = _array(list(range(100, 110)))
    ranked = _array([100, 1, 101, 2, 3, 102, 4, 5, 6, 7])
    original_hit = len(set(ranked.tolist()) & set(held_out.tolist())) / len(held_out)
    assert recall_at_k(ranked, held_out, 10) == pytest.approx(original_hit) == pytest.approx(0.3)


def test_coverage_counts_distinct_items_shown() -> None:
    lists = [_array([0, 1, -1]), _array([1, 2, 3])]
    assert catalogue_coverage(lists, 10, 2) == pytest.approx(3 / 10)


def test_names_and_directions() -> None:
    assert metric_key("ndcg", 10) == "ndcg_at_10"
    assert higher_is_better("ndcg_at_10")
    assert not higher_is_better("popularity_percentile_at_10")
    assert not higher_is_better("loss")
