"""First-order Markov chain: what followed the last song in training, backed off to popularity."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from segue.data.interactions import Holdout, Interactions
from segue.models.base import ModelConfig, Scorer


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
        self.has_successors = outgoing > 0
        popularity = train.item_counts().astype(np.float64)
        self.popularity = (popularity / max(popularity.sum(), 1.0)).astype(np.float32)

    def _score(self, histories: list[np.ndarray]) -> np.ndarray:
        weights = recency_weights(
            histories, self.n_items, self.config.history_decay, self.config.history_window
        )
        weights = weights.dot(sp.diags(self.has_successors.astype(np.float64))).tocsr()
        totals = np.asarray(weights.sum(axis=1)).ravel()
        normalised = sp.diags(1.0 / np.maximum(totals, 1e-12)).dot(weights)
        transition = np.asarray(normalised.dot(self.transitions).todense(), dtype=np.float32)
        backoff = np.where(totals > 0, self.config.backoff_weight, 1.0).astype(np.float32)
        return (1.0 - backoff)[:, None] * transition + backoff[:, None] * self.popularity

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
        self.has_successors = np.diff(self.transitions.indptr) > 0
        self.popularity = state["popularity"]
