"""The in-memory containers every model and evaluator speaks: histories and their matrix."""

from __future__ import annotations

import numpy as np

from segue.data.interactions import Interactions, as_history


def test_as_history_drops_unknown_indices_and_keeps_order() -> None:
    assert as_history([3, -1, 0, 9, 2], n_items=4).tolist() == [3, 0, 2]


def test_csr_is_binary_even_with_repeats() -> None:
    interactions = Interactions([np.array([0, 0, 2]), np.array([1])], 3, ["a", "b"])
    matrix = interactions.to_csr().toarray()
    assert matrix.tolist() == [[1, 0, 1], [0, 1, 0]]
    assert interactions.item_counts().tolist() == [2, 1, 1]
