"""Score rows that are a shared base row changed at a few cells, ranked without reading whole rows.

A Markov chain scores every song by its back-off (popularity) plus, for the few songs that
followed the request's last songs in training, their transition probability. Dense, each
request costs a fill, a masked copy and a top-k pass over the whole catalogue (three passes
over 200,000 songs). Kept as base + cells, a list reads only its cells and the head of the
base's order, which is sorted once when the model loads. The lists are exactly those of the
dense rows (tested).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RankedBase:
    """A base row and its finite items in ranking order (score descending, index ascending)."""

    scores: np.ndarray
    order: np.ndarray

    @classmethod
    def of(cls, scores: np.ndarray) -> RankedBase:
        scores = np.asarray(scores, dtype=np.float32)
        finite = np.flatnonzero(np.isfinite(scores))
        return cls(scores, finite[np.lexsort((finite, -scores[finite]))])


class RowScores:
    """One row's scores, read item by item (``row[items]``) as from a dense row."""

    __slots__ = ("base", "columns", "values")

    def __init__(self, base: np.ndarray, columns: np.ndarray, values: np.ndarray) -> None:
        self.base, self.columns, self.values = base, columns, values

    def __getitem__(self, items: np.ndarray | int) -> np.ndarray:
        found = self.base[items]
        if not len(self.columns):
            return found
        at, hit = _find(items, self.columns)
        return np.where(hit, self.values[at], found)


@dataclass(frozen=True)
class BaseRows:
    """Row ``r`` is ``bases[base_of[r]].scores`` with its cells set: the cells are flat arrays
    ordered by (row, column), row ``r``'s from ``bounds[r]`` to ``bounds[r + 1]``."""

    bases: tuple[RankedBase, ...]
    base_of: np.ndarray
    cell_rows: np.ndarray
    cell_columns: np.ndarray
    cell_values: np.ndarray

    @property
    def bounds(self) -> np.ndarray:
        return np.searchsorted(self.cell_rows, np.arange(len(self.base_of) + 1))

    @property
    def n_items(self) -> int:
        return len(self.bases[0].scores)

    def __len__(self) -> int:
        return len(self.base_of)

    def __getitem__(self, row: int) -> RowScores:
        start, stop = np.searchsorted(self.cell_rows, [row, row + 1])
        return RowScores(
            self.bases[self.base_of[row]].scores,
            self.cell_columns[start:stop],
            self.cell_values[start:stop],
        )

    def dense(self) -> np.ndarray:
        """The rows as a (rows, n_items) float32 array."""
        scores = np.empty((len(self), self.n_items), dtype=np.float32)
        scores[:] = self.bases[0].scores
        for code in range(1, len(self.bases)):
            scores[self.base_of == code] = self.bases[code].scores
        scores[self.cell_rows, self.cell_columns] = self.cell_values
        return scores

    def take(self, rows: Sequence[int]) -> BaseRows:
        """These rows, in this order."""
        bounds, chosen = self.bounds, np.asarray(rows, dtype=np.int64)
        starts = bounds[chosen]
        sizes = bounds[chosen + 1] - starts
        picked = np.repeat(starts - np.cumsum(sizes) + sizes, sizes) + np.arange(int(sizes.sum()))
        return BaseRows(
            self.bases,
            self.base_of[chosen],
            np.repeat(np.arange(len(sizes), dtype=np.int64), sizes),
            self.cell_columns[picked],
            self.cell_values[picked],
        )

    def can_score(self, row: int) -> bool:
        """Whether the row has a finite score anywhere."""
        return bool(len(self.bases[self.base_of[row]].order)) or bool(
            np.isfinite(self[row].values).any()
        )


def top_k_base_rows(
    rows: BaseRows,
    k: int,
    excluded: Sequence[Sequence[int] | np.ndarray],
    banned: np.ndarray | None = None,
) -> np.ndarray:
    """``top_k`` of the dense rows with each row's ``excluded`` items and the ``banned`` mask's
    items set to -inf: the same indices, best first, -1 padding.

    Outside its cells a row ranks as its base, so its best items are among its cells and the
    first k items of the base's order that are neither cells nor removed.
    """
    ranked = np.full((len(rows), k), -1, dtype=np.int64)
    if k <= 0:
        return ranked
    bounds = rows.bounds
    for row in range(len(rows)):
        base = rows.bases[rows.base_of[row]]
        columns = rows.cell_columns[bounds[row] : bounds[row + 1]]
        values = rows.cell_values[bounds[row] : bounds[row + 1]]
        removed = np.sort(np.asarray(excluded[row], dtype=np.int64))
        kept = np.isfinite(values) & ~_member(columns, removed)
        if banned is not None:
            kept &= ~banned[columns]
        want = k + len(columns) + len(removed)
        while True:
            head = base.order[:want]
            usable = ~(_member(head, columns) | _member(head, removed))
            if banned is not None:
                usable &= ~banned[head]
            if np.count_nonzero(usable) >= k or want >= len(base.order):
                break
            want *= 4
        head = head[usable][:k]
        items = np.concatenate([columns[kept], head])
        scores = np.concatenate([values[kept], base.scores[head]])
        best = items[np.lexsort((items, -scores))[:k]]
        ranked[row, : len(best)] = best
    return ranked


def _member(values: np.ndarray, ordered: np.ndarray) -> np.ndarray:
    """Which ``values`` are in the sorted array ``ordered`` (``np.isin``, for few values)."""
    if not len(ordered):
        return np.zeros(len(values), dtype=bool)
    return _find(values, ordered)[1]


def _find(values: np.ndarray | int, ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each of ``values`` is in the non-empty sorted array ``ordered``, and whether it is."""
    at = np.minimum(np.searchsorted(ordered, values), len(ordered) - 1)
    return at, ordered[at] == values
