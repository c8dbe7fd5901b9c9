"""Session-based item kNN: songs that co-occur with the recent songs, the latest weighing most."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from pydantic import Field, model_validator

from segue.data.interactions import Holdout, Interactions
from segue.models.base import ModelConfig, Scorer
from segue.models.markov import recency_weights

# Dense scratch entries per block of candidates (64 MB of float32), whatever the catalogue size.
_BLOCK_ENTRIES = 16_000_000


class SessionKnnConfig(ModelConfig):
    neighbours: int = Field(100, ge=1, le=100_000)
    recency_decay: float = Field(0.8, gt=0.0, le=1.0)
    history_window: int = Field(50, ge=1, le=100_000)
    cooccurrence_window: int = Field(0, ge=0, le=10_000)
    sequence_aware: bool = False

    @model_validator(mode="after")
    def _order_needs_a_window(self) -> SessionKnnConfig:
        if self.sequence_aware and self.cooccurrence_window == 0:
            raise ValueError("sequence_aware needs cooccurrence_window >= 1")
        return self


def windowed_cooccurrence(
    sequences: list[np.ndarray], n_items: int, window: int, *, following_only: bool
) -> sp.csr_matrix:
    """Counts of (a, b) where b occurs at most ``window`` positions after (or before) a."""
    rows, columns = [], []
    for sequence in sequences:
        for offset in range(1, min(window, len(sequence) - 1) + 1):
            rows.append(sequence[:-offset])
            columns.append(sequence[offset:])
    first = np.concatenate(rows) if rows else np.empty(0, dtype=np.int64)
    second = np.concatenate(columns) if columns else np.empty(0, dtype=np.int64)
    if not following_only:
        first, second = np.concatenate([first, second]), np.concatenate([second, first])
    distinct = first != second
    counts = sp.csr_matrix(
        (np.ones(int(distinct.sum()), dtype=np.float32), (first[distinct], second[distinct])),
        shape=(n_items, n_items),
    )
    counts.sum_duplicates()
    return counts


def candidate_blocks(n_items: int) -> list[tuple[int, int]]:
    """(start, stop) ranges of candidates whose dense similarity rows fit the scratch budget."""
    rows = max(1, _BLOCK_ENTRIES // max(n_items, 1))
    return [(start, min(start + rows, n_items)) for start in range(0, n_items, rows)]


def top_neighbours(
    similarity_rows: np.ndarray, keep: int, row_offset: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, columns, values) of the ``keep`` largest positive entries of each dense row."""
    block = similarity_rows.copy()
    block[np.arange(len(block)), np.arange(len(block)) + row_offset] = 0.0
    keep = min(keep, block.shape[1])
    columns = np.argpartition(-block, keep - 1, axis=1)[:, :keep]
    values = np.take_along_axis(block, columns, axis=1)
    rows = np.repeat(np.arange(len(block)) + row_offset, keep)
    positive = values.ravel() > 0
    return rows[positive], columns.ravel()[positive], values.ravel()[positive]


class SessionKnnScorer(Scorer):
    """score(b) = sum over recent items a of recency_decay ** steps_back(a) * cosine(a, b).

    Cosine similarity comes from co-occurrence in training sequences: anywhere in the same
    sequence (``cooccurrence_window = 0``) or within a window of positions; with
    ``sequence_aware`` only songs that *follow* a count as its neighbours. Each candidate keeps
    its ``neighbours`` most similar items. Items no recent song points to are ranked after the
    scored ones, by popularity.
    """

    name = "session-knn"
    config_class = SessionKnnConfig
    uses_order = True
    config: SessionKnnConfig

    def _fit(self, train: Interactions, validation: Holdout | None) -> None:
        counts = train.item_counts()
        self.popularity = (counts / max(float(counts.max(initial=0)), 1.0)).astype(np.float32)
        if self.config.cooccurrence_window == 0:
            self.similarity = self._sequence_cosine(train)
        else:
            self.similarity = self._window_cosine(train, counts)

    def _sequence_cosine(self, train: Interactions) -> sp.csr_matrix:
        """Cosine of the binary sequence x item columns, pruned per candidate, block by block."""
        matrix = train.to_csr()
        norms = np.sqrt(np.asarray(matrix.sum(axis=0)).ravel())
        inverse = np.where(norms > 0, 1.0 / np.maximum(norms, 1e-12), 0.0)
        by_item = matrix.T.tocsr()
        parts = []
        for start, stop in candidate_blocks(self.n_items):
            block = np.asarray(by_item[start:stop].dot(matrix).todense(), dtype=np.float32)
            block *= inverse[start:stop, None] * inverse[None, :]
            parts.append(top_neighbours(block, self.config.neighbours, start))
        return self._assemble(parts).T.tocsr()

    def _window_cosine(self, train: Interactions, counts: np.ndarray) -> sp.csr_matrix:
        """Cosine of windowed co-occurrence counts, pruned per candidate."""
        pairs = windowed_cooccurrence(
            train.sequences,
            self.n_items,
            self.config.cooccurrence_window,
            following_only=self.config.sequence_aware,
        )
        inverse = 1.0 / np.sqrt(np.maximum(counts, 1).astype(np.float64))
        cosine = sp.diags(inverse).dot(pairs).dot(sp.diags(inverse))
        # Rows of the transpose are candidates: keep each candidate's strongest sources.
        by_candidate = cosine.T.tocsr().astype(np.float32)
        parts = []
        for start, stop in candidate_blocks(self.n_items):
            block = np.asarray(by_candidate[start:stop].todense(), dtype=np.float32)
            parts.append(top_neighbours(block, self.config.neighbours, start))
        return self._assemble(parts).T.tocsr()

    def _assemble(self, parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> sp.csr_matrix:
        rows, columns, values = (
            np.concatenate(list(column)) for column in zip(*parts, strict=True)
        )
        return sp.csr_matrix((values, (rows, columns)), shape=(self.n_items, self.n_items))

    def _score(self, histories: list[np.ndarray]) -> np.ndarray:
        weights = recency_weights(
            histories, self.n_items, self.config.recency_decay, self.config.history_window
        )
        scores = np.asarray(weights.dot(self.similarity).todense(), dtype=np.float32)
        # Unscored items go below the smallest positive score, ordered by popularity.
        positive = np.where(scores > 0, scores, np.inf).min(axis=1)
        floor = np.where(np.isfinite(positive), positive, 1.0).astype(np.float32)
        filler = 0.5 * floor[:, None] * self.popularity[None, :]
        return np.where(scores > 0, scores, filler)

    def _state(self) -> dict[str, np.ndarray]:
        return {
            "similarity_data": self.similarity.data,
            "similarity_indices": self.similarity.indices,
            "similarity_indptr": self.similarity.indptr,
            "popularity": self.popularity,
        }

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self.similarity = sp.csr_matrix(
            (state["similarity_data"], state["similarity_indices"], state["similarity_indptr"]),
            shape=(self.n_items, self.n_items),
        )
        self.popularity = state["popularity"]
