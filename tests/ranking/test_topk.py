"""Top-K selection: score order, ties broken by index, padding and masking."""

from __future__ import annotations

import numpy as np

from segue.ranking.topk import mask_items, top_k


def test_top_k_orders_by_score_breaks_ties_by_index_and_pads() -> None:
    scores = np.array([[0.1, 0.9, 0.9, np.nan], [1.0, 2.0, 3.0, 4.0]], dtype=np.float32)
    masked = mask_items(scores, [np.array([], dtype=np.int64), np.array([3])])
    assert top_k(masked, 3).tolist() == [[1, 2, 0], [2, 1, 0]]
    assert top_k(masked, 5).tolist() == [[1, 2, 0, -1, -1], [2, 1, 0, -1, -1]]


def test_mask_items_does_not_modify_the_input() -> None:
    scores = np.ones((1, 3), dtype=np.float32)
    mask_items(scores, [np.array([0])])
    assert scores.tolist() == [[1.0, 1.0, 1.0]]


def test_top_k_keeps_the_lowest_indices_among_items_tied_at_the_cut() -> None:
    scores = np.zeros((2, 50), dtype=np.float32)
    scores[1, 40] = 1.0
    assert top_k(scores, 3).tolist() == [[0, 1, 2], [40, 0, 1]]
