"""In-memory containers every model and evaluator speaks: ordered histories of item indices.

Interactions are users (or playlists) x items, always. Ids become indices only through the saved
vocabulary; index ``UNKNOWN_ITEM`` (-1) stands for an item the vocabulary does not know and is
ignored by every model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

UNKNOWN_ITEM = -1


def as_history(items: Sequence[int] | np.ndarray, n_items: int) -> np.ndarray:
    """An int64 array of the known item indices in ``items``, order kept, unknown ones dropped."""
    array = np.asarray(items, dtype=np.int64).reshape(-1)
    return array[(array >= 0) & (array < n_items)]


@dataclass(frozen=True)
class Interactions:
    """Ordered item histories, one per user or playlist."""

    sequences: list[np.ndarray]
    n_items: int
    sequence_ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.sequence_ids and len(self.sequence_ids) != len(self.sequences):
            raise ValueError("sequence_ids and sequences differ in length")

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def n_interactions(self) -> int:
        return int(sum(len(sequence) for sequence in self.sequences))

    def to_csr(self) -> sp.csr_matrix:
        """A binary sequences x items matrix (repeats count once)."""
        lengths = np.fromiter((len(s) for s in self.sequences), dtype=np.int64, count=len(self))
        rows = np.repeat(np.arange(len(self), dtype=np.int64), lengths)
        columns = np.concatenate(self.sequences) if len(self) else np.empty(0, dtype=np.int64)
        matrix = sp.csr_matrix(
            (np.ones(len(columns), dtype=np.float32), (rows, columns)),
            shape=(len(self), self.n_items),
        )
        matrix.data[:] = 1.0
        matrix.sum_duplicates()
        matrix.data[:] = 1.0
        return matrix

    def item_counts(self) -> np.ndarray:
        """How many interactions each item has (popularity), length ``n_items``."""
        if not len(self):
            return np.zeros(self.n_items, dtype=np.int64)
        return np.bincount(np.concatenate(self.sequences), minlength=self.n_items)

    def subset(self, indices: Sequence[int]) -> Interactions:
        ids = [self.sequence_ids[i] for i in indices] if self.sequence_ids else []
        return Interactions([self.sequences[i] for i in indices], self.n_items, ids)


@dataclass(frozen=True)
class Holdout:
    """Evaluation cases: for each, the history a model sees and the items it should rank high."""

    histories: list[np.ndarray]
    targets: list[np.ndarray]
    sequence_ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.histories) != len(self.targets):
            raise ValueError("histories and targets differ in length")

    def __len__(self) -> int:
        return len(self.histories)


@dataclass(frozen=True)
class Split:
    """A training set and the validation and test cases drawn from the same dataset."""

    train: Interactions
    validation: Holdout
    test: Holdout
    protocol: str
    seed: int
    description: dict[str, object] = field(default_factory=dict)
