"""First-order Markov chain: what followed the last song in training, backed off to popularity."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from segue.data.interactions import Holdout, Interactions
from segue.models.base import ModelConfig, Scorer
from segue.ranking.base_rows import BaseRows, RankedBase


class MarkovConfig(ModelConfig):
    backoff_weight: float = Field(0.1, ge=0.0, le=1.0)
    history_decay: float = Field(0.0, ge=0.0, lt=1.0)
    history_window: int = Field(5, ge=1, le=1000)


def transition_counts(sequences: list[np.ndarray], n_items: int) -> sp.csr_matrix:
    """Sparse (from, to) counts of consecutive pairs; an item repeated in place is no transition."""
    sources = [sequence[:-1] for sequence in sequences if len(sequence) > 1]
    targets = [sequence[1:] for sequence in sequences if len(sequence) > 1]
    rows = np.concatenate(sources) if sources else np.empty(0, dtype=np.int64)
    columns = np.concatenate(targets) if targets else np.empty(0, dtype=np.int64)
    moved = rows != columns
    counts = sp.csr_matrix(
        (np.ones(int(moved.sum()), dtype=np.float32), (rows[moved], columns[moved])),
        shape=(n_items, n_items),
    )
    counts.sum_duplicates()
    return counts


def recency_weights(
    histories: list[np.ndarray], n_items: int, decay: float, window: int
) -> sp.csr_matrix:
    """(batch, n_items) weights: the last item 1, the one before ``decay``, and so on.

    Only the last ``window`` items count; an item seen several times adds its weights up.
    """
    rows, columns, values = [], [], []
    for row, history in enumerate(histories):
        recent = history[::-1][:window]
        if decay == 0.0:
            recent = recent[:1]
        rows.append(np.full(len(recent), row, dtype=np.int64))
        columns.append(recent)
        values.append(np.power(decay, np.arange(len(recent)), dtype=np.float64))
    weights = sp.csr_matrix(
        (
            np.concatenate(values) if values else np.empty(0),
            (
                np.concatenate(rows) if rows else np.empty(0, dtype=np.int64),
                np.concatenate(columns) if columns else np.empty(0, dtype=np.int64),
            ),
        ),
        shape=(len(histories), n_items),
    )
    weights.sum_duplicates()
    return weights


class MarkovScorer(Scorer):
    """P(next | last) from transition counts, mixed with popularity.

    score = (1 - backoff_weight) * P(next | recent items) + backoff_weight * P(popular). The
    recent items are the last one (``history_decay = 0``) or the last ``history_window`` ones
    weighted ``history_decay ** steps_back``. Items never followed by anything in training carry
    no weight, so when none of the recent items has known successors the scores are pure
    popularity.
    """

    name = "markov"
    config_class = MarkovConfig
    uses_order = True
    config: MarkovConfig

    def _fit(self, train: Interactions, validation: Holdout | None) -> None:
        counts = transition_counts(train.sequences, self.n_items)
        outgoing = np.asarray(counts.sum(axis=1)).ravel()
        self.transitions = sp.diags(1.0 / np.maximum(outgoing, 1.0)).dot(counts).tocsr()
        self.transitions = self.transitions.astype(np.float32)
        popularity = train.item_counts().astype(np.float64)
        self.popularity = (popularity / max(popularity.sum(), 1.0)).astype(np.float32)
        self._prepare()

    def _prepare(self) -> None:
        """Per-item arrays every call reads: which items have successors, the transition rows
        in one CSR float32 matrix, and the back-off popularity already multiplied by its weight."""
        self.transitions = sp.csr_matrix(self.transitions, dtype=np.float32)
        self.popularity = np.asarray(self.popularity, dtype=np.float32)
        self.has_successors = np.diff(self.transitions.indptr) > 0
        self._keep = np.float32(1.0) - np.float32(self.config.backoff_weight)
        self._backoff_scores = np.float32(self.config.backoff_weight) * self.popularity
        self._bases = (RankedBase.of(self._backoff_scores), RankedBase.of(self.popularity))

    def _score(self, histories: list[np.ndarray]) -> np.ndarray:
        return self._base_rows(histories).dense()

    def score_base_rows(self, histories: Sequence[Sequence[int] | np.ndarray]) -> BaseRows:
        return self._base_rows(self._known_histories(histories))

    def _base_rows(self, histories: list[np.ndarray]) -> BaseRows:
        """Each row: the weighted popularity, plus the recent items' transition rows (their
        weights normalised to sum to one) added where they have entries; pure popularity when no
        recent item has successors. Work: the entries of those rows, never the whole catalogue."""
        decay, window = self.config.history_decay, self.config.history_window
        recent = [history[::-1][: window if decay > 0.0 else 1] for history in histories]
        sizes = np.fromiter((len(items) for items in recent), dtype=np.int64, count=len(recent))
        sources = np.concatenate(recent) if len(recent) else np.empty(0, dtype=np.int64)
        rows = np.repeat(np.arange(len(recent), dtype=np.int64), sizes)
        steps = np.arange(len(sources), dtype=np.int64) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        weights = np.power(decay, steps, dtype=np.float64)
        moving = self.has_successors[sources]
        sources, rows, weights = sources[moving], rows[moving], weights[moving]
        totals = np.bincount(rows, weights=weights, minlength=len(histories))
        # Base 0 is the weighted popularity; base 1, pure popularity, where nothing moves on.
        base_of = (totals <= 0).astype(np.int64)
        # The transition rows of every (row, source) pair, as flat (row, column, value) entries.
        indptr = self.transitions.indptr
        starts = indptr[sources].astype(np.int64)
        lengths = indptr[sources + 1] - starts
        offsets = np.cumsum(lengths) - lengths
        positions = np.repeat(starts - offsets, lengths) + np.arange(int(lengths.sum()))
        columns = self.transitions.indices[positions].astype(np.int64)
        values = self.transitions.data[positions] * np.repeat(weights / totals[rows], lengths)
        cells = np.repeat(rows, lengths) * self.n_items + columns
        if np.any(cells[1:] <= cells[:-1]):  # several sources in a row may hit a cell twice
            cells, inverse = np.unique(cells, return_inverse=True)
            values = np.bincount(inverse.ravel(), weights=values, minlength=len(cells))
        cell_rows, cell_columns = np.divmod(cells, self.n_items)
        return BaseRows(
            self._bases,
            base_of,
            cell_rows,
            cell_columns,
            self._keep * values.astype(np.float32) + self._backoff_scores[cell_columns],
        )

    def _state(self) -> dict[str, np.ndarray]:
        return {
            "transitions_data": self.transitions.data,
            "transitions_indices": self.transitions.indices,
            "transitions_indptr": self.transitions.indptr,
            "popularity": self.popularity,
        }

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self.transitions = sp.csr_matrix(
            (state["transitions_data"], state["transitions_indices"], state["transitions_indptr"]),
            shape=(self.n_items, self.n_items),
        )
        self.popularity = state["popularity"]
        self._prepare()
