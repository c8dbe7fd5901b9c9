"""Scoring by summing weight rows: the same float32 numbers, bit for bit, as the sparse product."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from segue.data.interactions import Interactions
from segue.models import weight_rows
from segue.models.weight_rows import GATHER_MAX_ITEMS, sum_dense_rows, sum_sparse_rows
from segue.ranking.topk import top_k


def random_histories(n_items: int, seed: int) -> list[np.ndarray]:
    """Empty, single, repeated-item, short and longer-than-the-gather-limit histories."""
    rng = np.random.default_rng(seed)
    lengths = [0, 1, 3, 25, GATHER_MAX_ITEMS, GATHER_MAX_ITEMS + 40, *rng.integers(1, 90, 30)]
    return [rng.integers(0, n_items, size=int(length)) for length in lengths]


def product(histories: list[np.ndarray], weights: np.ndarray | sp.csr_matrix) -> np.ndarray:
    """The textbook form: binary history rows times the weights."""
    rows = Interactions(histories, weights.shape[0]).to_csr()
    result = rows @ weights
    return result.toarray() if sp.issparse(result) else np.asarray(result)


def test_dense_rows_equal_the_product_bit_for_bit_and_give_the_same_lists() -> None:
    rng = np.random.default_rng(0)
    # Few distinct values: scores tie often, so equal lists test the tie order too.
    weights = rng.integers(-3, 4, size=(700, 700)).astype(np.float32) / 8
    weights[:, :50] = rng.standard_normal((700, 50)).astype(np.float32)
    histories = random_histories(700, seed=1)
    fast, reference = sum_dense_rows(histories, weights), product(histories, weights)
    assert fast.dtype == np.float32
    np.testing.assert_array_equal(fast, reference)
    np.testing.assert_array_equal(top_k(fast, 10, histories), top_k(reference, 10, histories))
    for history in histories:  # one at a time, as single requests are served
        np.testing.assert_array_equal(
            sum_dense_rows([history], weights)[0], product([history], weights)[0]
        )


@pytest.mark.parametrize("max_entries", [weight_rows.GATHER_MAX_ENTRIES, 500])
def test_sparse_rows_equal_the_product_bit_for_bit(
    max_entries: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(weight_rows, "GATHER_MAX_ENTRIES", max_entries)  # 500: many small runs
    weights = sp.random(600, 600, density=0.05, random_state=2, dtype=np.float32, format="csr")
    weights.data = np.round(weights.data * 8) / 8  # ties
    histories = random_histories(600, seed=3)
    fast, reference = sum_sparse_rows(histories, weights), product(histories, weights)
    assert fast.dtype == np.float32
    np.testing.assert_array_equal(fast, reference)
    np.testing.assert_array_equal(top_k(fast, 10, histories), top_k(reference, 10, histories))


def test_items_without_weights_and_empty_batches() -> None:
    weights = sp.csr_matrix((5, 5), dtype=np.float32)
    assert sum_sparse_rows([np.array([0, 4])], weights).tolist() == [[0.0] * 5]
    assert sum_sparse_rows([], weights).shape == (0, 5)
    assert sum_dense_rows([], np.ones((5, 5), dtype=np.float32)).shape == (0, 5)
