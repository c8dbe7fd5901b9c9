"""Base rows are ranked without reading whole rows: their lists must be exactly the dense rows'."""

from __future__ import annotations

import numpy as np
import pytest

from segue.ranking.ban_list import BanList
from segue.ranking.base_rows import BaseRows, RankedBase, top_k_base_rows
from segue.ranking.postprocess import PostProcessConfig, RankingCatalogue, rank_lists_counted
from segue.ranking.topk import top_k


def random_rows(rng: np.random.Generator, n_items: int, n_rows: int) -> BaseRows:
    """Rows over two bases full of ties, each with a few cells (some of them not finite)."""
    bases = []
    for _ in range(2):
        scores = rng.integers(0, 4, n_items).astype(np.float32)
        scores[rng.random(n_items) < 0.1] = -np.inf
        bases.append(RankedBase.of(scores))
    cell_rows, cell_columns, cell_values = [], [], []
    for row in range(n_rows):
        columns = np.unique(rng.integers(0, n_items, rng.integers(0, 8)))
        values = rng.integers(0, 6, len(columns)).astype(np.float32)
        values[rng.random(len(columns)) < 0.1] = np.nan
        cell_rows.append(np.full(len(columns), row))
        cell_columns.append(columns)
        cell_values.append(values)
    return BaseRows(
        tuple(bases),
        rng.integers(0, 2, n_rows),
        np.concatenate(cell_rows).astype(np.int64),
        np.concatenate(cell_columns).astype(np.int64),
        np.concatenate(cell_values),
    )


@pytest.mark.parametrize("seed", range(40))
def test_top_k_equals_the_dense_top_k_with_ties_exclusions_and_bans(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_items, n_rows = int(rng.integers(1, 60)), int(rng.integers(1, 5))
    rows = random_rows(rng, n_items, n_rows)
    excluded = [np.unique(rng.integers(0, n_items, rng.integers(0, 6))) for _ in range(n_rows)]
    banned = rng.random(n_items) < 0.2
    k = int(rng.integers(1, 12))
    dense = rows.dense()
    assert np.array_equal(
        top_k_base_rows(rows, k, excluded, banned), top_k(dense, k, excluded, banned)
    )


def test_a_row_reads_item_by_item_as_the_dense_row() -> None:
    rows = random_rows(np.random.default_rng(7), 30, 4)
    dense = rows.dense()
    items = np.arange(30)
    for row in range(len(rows)):
        np.testing.assert_array_equal(rows[row][items], dense[row])
        assert float(rows[row][5]) == float(dense[row, 5]) or np.isnan(dense[row, 5])


def test_take_keeps_the_chosen_rows_in_their_new_order() -> None:
    rows = random_rows(np.random.default_rng(3), 25, 5)
    np.testing.assert_array_equal(rows.take([4, 1, 1]).dense(), rows.dense()[[4, 1, 1]])


@pytest.mark.parametrize("config", [PostProcessConfig(), PostProcessConfig(max_per_artist=1)])
def test_ranked_lists_and_removed_counts_are_the_dense_rows(config: PostProcessConfig) -> None:
    rng = np.random.default_rng(11)
    n_items = 40
    rows = random_rows(rng, n_items, 6)
    keys = [f"artist{item % 7}|song{item}" for item in range(n_items)]
    catalogue = RankingCatalogue(
        keys, [f"artist{item % 7}" for item in range(n_items)], np.ones(n_items)
    )
    seen = [rng.integers(0, n_items, 5) for _ in range(6)]
    excluded = [rng.integers(0, n_items, 2) for _ in range(6)]
    bans = BanList(keys=frozenset(keys[:3]), artists=frozenset())
    arguments = dict(ban_list=bans, config=config)
    sparse = rank_lists_counted(rows, [5] * 6, catalogue, seen, excluded, **arguments)
    dense = rank_lists_counted(rows.dense(), [5] * 6, catalogue, seen, excluded, **arguments)
    assert sparse == dense
