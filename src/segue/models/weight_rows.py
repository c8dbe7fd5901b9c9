"""Scores that are sums of item weight rows: score(history) = sum of W[i] over its distinct items.

EASE and item-kNN score this way. The textbook form is one sparse (histories x items) product
with W, but building that sparse matrix and calling the product costs far more than the
arithmetic for the short histories of a served request. These functions gather and add the
rows directly, and give the same float32 numbers, bit for bit, as the product: they add the
same rows in the same order (distinct items ascending) with float32 accumulation (tested).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from segue._kernels import add_rows
from segue.data.interactions import Interactions
from segue.models.base import Scorer

# Histories with at most this many distinct items gather their dense rows; longer ones (and the
# evaluation's big batches of them) go through one sparse product, which copies nothing.
GATHER_MAX_ITEMS = 64
# Most (row, item) entries one gathered sparse batch may add up at once (bounds its scratch).
GATHER_MAX_ENTRIES = 4_000_000


def sum_dense_rows(histories: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """(len(histories), n_items) float32: row r = the sum of ``weights[i]`` over r's items."""
    n_items = weights.shape[1]
    scores = np.zeros((len(histories), n_items), dtype=np.float32)
    distinct = [np.unique(np.asarray(history, dtype=np.int64)) for history in histories]
    long_rows = []
    for row, items in enumerate(distinct):
        if len(items) > GATHER_MAX_ITEMS:
            long_rows.append(row)
        elif len(items):
            # The rows added one after another, as the product does, into the row itself: one
            # compiled loop (a NumPy call per row cost more than the additions).
            add_rows(weights, items, scores[row])
    if long_rows:
        matrix = Interactions([distinct[row] for row in long_rows], weights.shape[0]).to_csr()
        scores[long_rows] = np.asarray(matrix @ weights, dtype=np.float32)
    return scores


def sum_sparse_rows(histories: list[np.ndarray], weights: sp.csr_matrix) -> np.ndarray:
    """``sum_dense_rows`` for CSR weights: each item's stored row entries added, in item order."""
    n_items = weights.shape[1]
    scores = np.zeros((len(histories), n_items), dtype=np.float32)
    distinct = [np.unique(history) for history in histories]
    per_item = np.diff(weights.indptr)
    entries = [int(per_item[items].sum()) for items in distinct]
    start = 0
    while start < len(distinct):
        # Rows whose entries fit the scratch budget together (at least one row).
        stop, total = start + 1, entries[start]
        while stop < len(distinct) and total + entries[stop] <= GATHER_MAX_ENTRIES:
            total += entries[stop]
            stop += 1
        _add_sparse_rows(distinct[start:stop], weights, scores[start:stop])
        start = stop
    return scores


def _add_sparse_rows(
    distinct: list[np.ndarray], weights: sp.csr_matrix, scores: np.ndarray
) -> None:
    """Add the CSR rows of each history's items into its row of ``scores`` (in place)."""
    n_items = weights.shape[1]
    items = np.concatenate(distinct) if distinct else np.empty(0, dtype=np.int64)
    if not len(items):
        return
    owner = np.repeat(np.arange(len(distinct)), [len(d) for d in distinct])
    starts, stops = weights.indptr[items], weights.indptr[items + 1]
    counts = stops - starts
    # Positions of every stored entry of every gathered row, rows kept in item order.
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    positions = np.arange(int(counts.sum())) + offsets
    flat_columns = np.repeat(owner, counts) * n_items + weights.indices[positions]
    # ufunc.at adds in the order given, in float32: the product's order and rounding.
    np.add.at(scores.reshape(-1), flat_columns, weights.data[positions])


class ItemWeightsScorer(Scorer):
    """A user-item scorer whose fit leaves one dense items x items matrix W in ``weights``:
    score(history) = the sum of W's rows over the history. Subclasses implement ``_fit``."""

    tasks = frozenset({"user-items"})
    weights: np.ndarray

    def _score(self, histories: list[np.ndarray]) -> np.ndarray:
        return sum_dense_rows(histories, self.weights)

    def summed_weight_rows(self) -> np.ndarray | None:
        return self.weights

    def _state(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights}

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self.weights = state["weights"]
