"""Top-K selection: score order, ties broken by index, padding and masking; equal to a full sort."""

from __future__ import annotations

import numpy as np
import pytest

from segue.ranking.topk import top_k


def test_top_k_orders_by_score_breaks_ties_by_index_and_pads() -> None:
    scores = np.array([[0.1, 0.9, 0.9, np.nan], [1.0, 2.0, 3.0, 4.0]], dtype=np.float32)
    excluded = [np.array([], dtype=np.int64), np.array([3])]
    assert top_k(scores, 3, excluded).tolist() == [[1, 2, 0], [2, 1, 0]]
    assert top_k(scores, 5, excluded).tolist() == [[1, 2, 0, -1, -1], [2, 1, 0, -1, -1]]


def test_top_k_leaves_out_excluded_and_banned_items_without_changing_the_scores() -> None:
    scores = np.array([[5.0, 4.0, 3.0, 2.0, 1.0], [5.0, 4.0, 3.0, 2.0, 1.0]], dtype=np.float32)
    before = scores.copy()
    banned = np.array([False, True, False, False, False])
    # Repeats, unsorted lists and items outside the catalogue are all fine.
    excluded = [[2, 0, 2, -1, 99], []]
    assert top_k(scores, 3, excluded, banned).tolist() == [[3, 4, -1], [0, 2, 3]]
    assert np.array_equal(scores, before)
    with pytest.raises(ValueError, match="1 exclusion lists for 2 rows"):
        top_k(scores, 3, [[0]])


def test_top_k_keeps_the_lowest_indices_among_items_tied_at_the_cut() -> None:
    scores = np.zeros((2, 50), dtype=np.float32)
    scores[1, 40] = 1.0
    assert top_k(scores, 3).tolist() == [[0, 1, 2], [40, 0, 1]]


def _sorted_reference(scores: np.ndarray, k: int) -> np.ndarray:
    """The definition top_k must meet: a full sort by (score descending, index ascending)."""
    ranked = []
    for row in np.where(np.isnan(scores), -np.inf, scores):
        order = np.lexsort((np.arange(len(row)), -row))[:k]
        order = [int(item) if np.isfinite(row[item]) else -1 for item in order]
        ranked.append(order + [-1] * (k - len(order)))
    return np.array(ranked, dtype=np.int64).reshape(len(scores), k)


@pytest.mark.parametrize("n_items", [1, 7, 300, 2048, 5000, 30_000])
def test_top_k_equals_a_full_sort_with_ties_infinities_and_nan(n_items: int) -> None:
    rng = np.random.default_rng(n_items)
    for trial in range(12):
        levels = int(rng.choice([2, 5, 1000]))  # few levels: heavy ties at every cut
        scores = rng.integers(0, levels, size=(4, n_items)).astype(np.float32)
        scores[rng.random(scores.shape) < 0.2 * (trial % 3)] = -np.inf
        scores[rng.random(scores.shape) < 0.05 * (trial % 2)] = np.nan
        if trial == 11:
            scores[1] = -np.inf
        for k in (1, 10, 50):
            np.testing.assert_array_equal(top_k(scores, k), _sorted_reference(scores, k))


def test_top_k_on_a_catalogue_indexed_by_popularity() -> None:
    """Popular items first and long runs of equal scores: the tie-heavy case of real songs."""
    counts = np.sort(np.random.default_rng(0).zipf(1.6, 50_000).clip(max=300))[::-1]
    scores = np.tile(counts.astype(np.float32) * 0.1, (3, 1))
    scores[1, [49_000, 20_000]] = 100.0  # two strong transitions far down the catalogue
    scores[2, :] = 1.0  # every item tied
    for k in (10, 20):
        np.testing.assert_array_equal(top_k(scores, k), _sorted_reference(scores, k))
