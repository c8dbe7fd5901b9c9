"""Metrics against hand-computed values: empty, perfect, no hit, fewer than K, the original HIT."""

from __future__ import annotations

import math

import numpy as np
import pytest

from segue.evaluation.metrics import (
    artist_concentration,
    catalogue_coverage,
    exposure_counts,
    f1_at_k,
    gini,
    higher_is_better,
    hit_rate_at_k,
    intra_list_diversity,
    lorenz_curve,
    metric_key,
    mrr_at_k,
    ndcg_at_k,
    novelty,
    personalization,
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


# -- output health of served lists (the monitoring report) -------------------------------------


def test_exposure_counts_ignore_empty_slots_and_unknown_items() -> None:
    counts = exposure_counts([_array([0, 1, 5]), _array([1, -1])], n_items=3, k=3)
    assert counts.tolist() == [1, 2, 0]
    assert exposure_counts([], n_items=2, k=3).tolist() == [0, 0]


def test_gini_equal_one_takes_all_and_hand_computed() -> None:
    assert gini(np.array([1, 1, 1, 1])) == pytest.approx(0.0)
    assert gini(np.array([0, 0, 0, 4])) == pytest.approx(0.75)  # (n - 1) / n
    # sum |xi - xj| over ordered pairs / (2 n^2 mean) = 4 / (2 * 4 * 2)
    assert gini(np.array([3, 1])) == pytest.approx(0.25)
    assert gini(np.array([0, 0])) == 0.0
    assert gini(np.array([])) == 0.0


def test_lorenz_curve_of_two_items() -> None:
    items, exposure = lorenz_curve(np.array([3, 1]))
    assert items.tolist() == [0.0, 0.5, 1.0]
    assert exposure.tolist() == [0.0, 0.25, 1.0]


def test_novelty_is_mean_self_information_with_smoothing() -> None:
    counts = np.array([3, 1, 0, 0])  # p = (c + 1) / (4 + 4): 1/2, 1/4, 1/8, 1/8
    assert novelty([_array([0, 1]), _array([2])], counts, k=2) == pytest.approx((1 + 2 + 3) / 3)
    assert novelty([], counts, k=2) == 0.0
    assert novelty([_array([-1])], counts, k=2) == 0.0


def test_personalization_is_one_minus_mean_pairwise_overlap() -> None:
    lists = [_array([0, 1]), _array([0, 2]), _array([3, 4])]
    # overlaps 1, 0, 0 over 3 pairs, each / K = 2: mean 1/6
    assert personalization(lists, k=2) == pytest.approx(5 / 6)
    assert personalization([_array([0, 1]), _array([1, 0])], k=2) == pytest.approx(0.0)
    assert personalization([_array([0, 1]), _array([2, 3])], k=2) == pytest.approx(1.0)
    assert personalization([_array([0, 1])], k=2) == 0.0


def test_intra_list_diversity_and_artist_concentration() -> None:
    assert intra_list_diversity(["a", "a", "b"]) == pytest.approx(2 / 3)  # 2 of 3 pairs differ
    assert intra_list_diversity(["a", "b", "c"]) == 1.0
    assert intra_list_diversity(["a", "a"]) == 0.0
    assert intra_list_diversity(["a"]) == 1.0
    assert artist_concentration(["a", "a", "b"]) == pytest.approx(2 / 3)
    assert artist_concentration(["a", "b"]) == 0.5
    assert artist_concentration([]) == 0.0
