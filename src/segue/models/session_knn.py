"""Session-based item kNN: songs that co-occur with the recent songs, the latest weighing most."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from pydantic import Field, model_validator

from segue.data.interactions import Holdout, Interactions
from segue.models.base import ModelConfig, Scorer
from segue.models.markov import recency_weights

# Nonzero similarities per block of candidates (~100 bytes of scratch each with the sort: about
# 400 MB), whatever the catalogue size.
_BLOCK_NONZEROS = 4_000_000


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


def sequence_sizes(sequences: list[np.ndarray], n_items: int) -> tuple[np.ndarray, int]:
    """Each sequence's length and how many distinct items occur at all, for the memory estimate
    (one flag per item: nothing the size of the interactions is allocated)."""
    occurs = np.zeros(n_items, dtype=bool)
    for sequence in sequences:
        occurs[sequence] = True
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    return lengths, int(occurs.sum())


def row_blocks(row_nonzeros: np.ndarray, budget: int) -> list[tuple[int, int]]:
    """(start, stop) ranges of consecutive rows holding at most ``budget`` nonzeros in all.

    A row above the budget on its own makes a block of one row.
    """
    ends = np.cumsum(row_nonzeros, dtype=np.int64)
    blocks, start = [], 0
    while start < len(ends):
        before = ends[start - 1] if start else 0
        stop = max(int(np.searchsorted(ends, before + budget, side="right")), start + 1)
        blocks.append((start, stop))
        start = stop
    return blocks


def strongest_per_row(
    block: sp.csr_matrix, keep: int, row_offset: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``keep`` largest positive entries of each row of ``block``, its diagonal left out.

    Row r of the block is row ``row_offset + r`` of the square matrix. Returns (kept entries per
    row, their columns, their values), rows in order. Ties go to the smaller column, so what is
    kept does not depend on the order of the block's entries.
    """
    n_rows = block.shape[0]
    rows = np.repeat(np.arange(n_rows), np.diff(block.indptr))
    usable = (block.data > 0) & (block.indices != rows + row_offset)
    rows, columns = rows[usable], block.indices[usable]
    values = block.data[usable].astype(np.float32, copy=False)
    per_row = np.bincount(rows, minlength=n_rows)
    # Each row keeps what is above its keep-th largest value (0 where it has no more than keep).
    threshold = np.zeros(n_rows, dtype=np.float32)
    heavy = np.flatnonzero(per_row > keep)
    in_heavy = per_row[rows] > keep
    # Positive float32 values order like their bit patterns: one integer sort by (row, -value).
    keys = np.sort((rows[in_heavy] << 31) - values[in_heavy].view(np.int32))
    starts = np.cumsum(per_row[heavy]) - per_row[heavy]
    kth = (heavy << 31) - keys[starts + keep - 1]
    threshold[heavy] = kth.astype(np.int32).view(np.float32)
    chosen = values > threshold[rows]
    # Entries tied at a heavy row's threshold fill its remaining places, smaller columns first.
    tied = np.flatnonzero(in_heavy & (values == threshold[rows]))
    tied = tied[np.lexsort((columns[tied], rows[tied]))]
    tied_rows = rows[tied]
    free = keep - np.bincount(rows[chosen], minlength=n_rows)
    first_tie = np.searchsorted(tied_rows, tied_rows)
    chosen[tied[np.arange(len(tied)) - first_tie < free[tied_rows]]] = True
    return np.minimum(per_row, keep), columns[chosen], values[chosen]


class SessionKnnScorer(Scorer):
    """score(b) = sum over recent items a of recency_decay ** steps_back(a) * cosine(a, b).

    Cosine similarity comes from co-occurrence in training sequences: anywhere in the same
    sequence (``cooccurrence_window = 0``) or within a window of positions; with
    ``sequence_aware`` only songs that *follow* a count as its neighbours. Each candidate keeps
    its ``neighbours`` most similar items (ties: the lower index, in an ingested dataset the more
    played song). Items no recent song points to are ranked after the scored ones, by popularity.
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

    def estimate_fit_bytes(self, train: Interactions) -> int:
        """Peak bytes of the fit, from the sequences' lengths and the items that occur.

        Pairs are the co-occurrences the fit can meet, repeats included: length x (length - 1)
        per sequence, or with a window the pairs within it (both ways unless sequence-aware; at
        most 2 x window x interactions). The fit holds its input (two sparse copies of the
        interactions, 16 B each; or the windowed counts, their cosine and its transpose, 32 B a
        pair), ~64 B per catalogue item, one block's products and sort keys (56 B an entry, at
        most the block budget) and, at the end, the kept neighbours three times over (the
        blocks' parts, gathered, transposed: 24 B each). Building the input peaks earlier: 40 B
        per interaction, or 64 B per windowed pair.
        """
        lengths, occurring = sequence_sizes(train.sequences, train.n_items)
        interactions = int(lengths.sum())
        window = self.config.cooccurrence_window
        if window == 0:
            pairs = int((lengths * (lengths - 1)).sum())
            building, held = 40 * interactions, 16 * interactions
        else:
            reach = np.minimum(window, np.maximum(lengths - 1, 0))
            pairs = int((reach * lengths - reach * (reach + 1) // 2).sum())
            pairs *= 1 if self.config.sequence_aware else 2
            building, held = 64 * pairs, 32 * pairs
        kept = min(occurring * min(self.config.neighbours, max(occurring - 1, 0)), pairs)
        block = min(max(_BLOCK_NONZEROS, occurring), occurring**2, pairs + interactions)
        return max(building, held + 64 * train.n_items + 24 * kept + 56 * block)

    def fit_alternative(self, train: Interactions) -> str:
        if self.config.cooccurrence_window:
            return (
                "a smaller cooccurrence_window (or 0: whole sequences, fitted block by block), "
                "fewer neighbours, or markov"
            )
        return "keep fewer neighbours, fit on fewer items (raise data.min_item_count), or markov"

    def _sequence_cosine(self, train: Interactions) -> sp.csr_matrix:
        """Cosine of the binary sequence x item columns, pruned per candidate, block by block.

        Only co-occurring pairs are computed: a block's rows hold at most the summed lengths of
        the sequences its candidates occur in, so the cost follows the pairs, not items².
        """
        matrix = train.to_csr()
        norms = np.sqrt(np.asarray(matrix.sum(axis=0)).ravel())
        inverse = np.where(norms > 0, 1.0 / np.maximum(norms, 1e-12), 0.0)
        by_item = matrix.T.tocsr()
        # Entries of each candidate's row before duplicates are summed (never above the catalogue).
        bound = by_item.dot(np.diff(matrix.indptr).astype(np.float64))
        parts = []
        for start, stop in row_blocks(np.minimum(bound, self.n_items), _BLOCK_NONZEROS):
            block = by_item[start:stop].dot(matrix)
            rows = np.repeat(np.arange(start, stop), np.diff(block.indptr))
            block.data = (block.data * (inverse[rows] * inverse[block.indices])).astype(np.float32)
            parts.append(strongest_per_row(block, self.config.neighbours, start))
        return self._sources_of_candidates(parts)

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
        parts = [
            strongest_per_row(by_candidate[start:stop], self.config.neighbours, start)
            for start, stop in row_blocks(np.diff(by_candidate.indptr), _BLOCK_NONZEROS)
        ]
        return self._sources_of_candidates(parts)

    def _sources_of_candidates(
        self, parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
    ) -> sp.csr_matrix:
        """The kept (candidate -> source) rows of every block, as the source x candidate matrix."""
        per_row, columns, values = (
            np.concatenate(list(column)) for column in zip(*parts, strict=True)
        )
        indptr = np.concatenate(([0], np.cumsum(per_row)))
        by_candidate = sp.csr_matrix((values, columns, indptr), shape=(self.n_items, self.n_items))
        return by_candidate.T.tocsr()

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
