"""Item-kNN: shrunk cosine similarity between items, a sparse neighbourhood per item, closed form."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from segue.data.interactions import Holdout, Interactions
from segue.models.base import ModelConfig, Scorer
from segue.models.weight_rows import sum_sparse_rows

# Columns of the item-item matrix computed densely at once; bounds memory to n_items x this.
_BLOCK_SIZE = 1024


class ItemKnnConfig(ModelConfig):
    """How many neighbours each item keeps and how hard rare co-occurrences are shrunk."""

    neighbours: int = Field(30, ge=1, le=100_000)
    shrinkage: float = Field(0.0, ge=0.0, le=1e6)


def item_similarities(matrix: sp.csr_matrix, neighbours: int, shrinkage: float) -> sp.csr_matrix:
    """S[i, j] = co(i, j) / (sqrt(n_i) sqrt(n_j) + shrinkage), keeping each item j's top neighbours i.

    ``matrix`` is binary users x items. Self-similarity and non-positive values are dropped, so
    an item never recommends itself and the result stays sparse.
    """
    n_items = matrix.shape[1]
    binary = matrix.astype(np.float32)
    norms = np.sqrt(np.asarray(binary.sum(axis=0), dtype=np.float32).ravel())
    by_item = binary.T.tocsr()
    columns = binary.tocsc()
    keep = min(neighbours, n_items)
    rows, cols, values = [], [], []
    for start in range(0, n_items, _BLOCK_SIZE):
        stop = min(start + _BLOCK_SIZE, n_items)
        block = np.arange(start, stop)
        co_counts = (by_item @ columns[:, start:stop]).toarray()
        denominator = np.outer(norms, norms[start:stop]) + np.float32(shrinkage)
        similarity = np.divide(
            co_counts, denominator, out=np.zeros_like(co_counts), where=denominator > 0
        )
        similarity[block, block - start] = 0.0
        if keep < n_items:
            top = np.argpartition(-similarity, keep - 1, axis=0)[:keep]
        else:
            top = np.broadcast_to(np.arange(n_items)[:, None], similarity.shape)
        kept = np.take_along_axis(similarity, top, axis=0)
        positive = kept > 0
        rows.append(top[positive])
        cols.append(np.broadcast_to(block, top.shape)[positive])
        values.append(kept[positive])
    return sp.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_items, n_items),
        dtype=np.float32,
    )


class ItemKnnScorer(Scorer):
    """Score of item j = sum of its similarities to the history's items (among j's neighbours)."""

    name = "item-knn"
    tasks = frozenset({"user-items"})
    config_class = ItemKnnConfig

    config: ItemKnnConfig

    def _fit(self, train: Interactions, validation: Holdout | None) -> None:
        self.similarity = item_similarities(
            train.to_csr(), self.config.neighbours, self.config.shrinkage
        )

    def estimate_fit_bytes(self, train: Interactions) -> int:
        """Copies of the binary matrix, one block of dense similarity columns (co-counts,
        denominators, similarities as float32, argpartition's int64 indices) and the kept pairs."""
        items = train.n_items
        block = min(_BLOCK_SIZE, items)
        kept = 24 * items * min(self.config.neighbours, items)
        return 48 * train.n_interactions + 20 * items * block + kept

    def fit_alternative(self, train: Interactions) -> str:
        return "fit on fewer items (raise data.min_item_count) or keep fewer neighbours"

    def _score(self, histories: list[np.ndarray]) -> np.ndarray:
        # The sum of the history's similarity rows, gathered (equal to the sparse product).
        return sum_sparse_rows(histories, self.similarity)

    def _state(self) -> dict[str, np.ndarray]:
        return {
            "similarity_data": self.similarity.data,
            "similarity_indices": self.similarity.indices,
            "similarity_indptr": self.similarity.indptr,
        }

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self.similarity = sp.csr_matrix(
            (state["similarity_data"], state["similarity_indices"], state["similarity_indptr"]),
            shape=(self.n_items, self.n_items),
        )
