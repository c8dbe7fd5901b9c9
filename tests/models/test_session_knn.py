"""Session-kNN's sparse, blocked similarity against a dense brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest

from segue.data.interactions import Interactions
from segue.models import session_knn
from segue.models.base import create_model
from segue.models.session_knn import row_blocks

N_ITEMS = 40


@pytest.fixture(scope="module")
def train() -> Interactions:
    """Seeded sequences with repeats, one unseen item and many tied counts."""
    rng = np.random.default_rng(7)
    sequences = [rng.integers(0, N_ITEMS - 1, size=rng.integers(1, 13)) for _ in range(60)]
    return Interactions([s.astype(np.int64) for s in sequences], N_ITEMS)


def dense_cosine(train: Interactions, window: int, following_only: bool) -> np.ndarray:
    """cosine[a, b], with numpy loops over the sequences: no sparse matrix involved."""
    pairs = np.zeros((N_ITEMS, N_ITEMS))
    for sequence in train.sequences:
        if window == 0:
            present = np.zeros(N_ITEMS)
            present[sequence] = 1.0
            pairs += np.outer(present, present)
            continue
        for i, a in enumerate(sequence):
            for b in sequence[i + 1 : i + 1 + window]:
                if a != b:
                    pairs[a, b] += 1.0
                    if not following_only:
                        pairs[b, a] += 1.0
    if window == 0:
        norms = np.sqrt(np.diag(pairs))
        inverse = np.where(norms > 0, 1.0 / np.maximum(norms, 1e-12), 0.0)
        return (pairs * (inverse[:, None] * inverse[None, :])).astype(np.float32)
    inverse = 1.0 / np.sqrt(np.maximum(train.item_counts(), 1).astype(np.float64))
    return (inverse[:, None] * pairs * inverse[None, :]).astype(np.float32)


def brute_force_top(cosine: np.ndarray, keep: int) -> np.ndarray:
    """similarity[a, b]: candidate b keeps its ``keep`` best sources a (ties: smaller a)."""
    similarity = np.zeros_like(cosine)
    for b in range(N_ITEMS):
        sources = [a for a in range(N_ITEMS) if a != b and cosine[a, b] > 0]
        best = sorted(sources, key=lambda a: (-cosine[a, b], a))[:keep]
        similarity[best, b] = cosine[best, b]
    return similarity


@pytest.mark.parametrize("budget", [1, 37, 4_000_000])
@pytest.mark.parametrize("neighbours", [1, 3, 100])
@pytest.mark.parametrize(
    ("window", "aware"), [(0, False), (2, False), (2, True)], ids=["sequence", "window", "aware"]
)
def test_similarity_equals_the_dense_reference(
    train: Interactions,
    monkeypatch: pytest.MonkeyPatch,
    budget: int,
    neighbours: int,
    window: int,
    aware: bool,
) -> None:
    monkeypatch.setattr(session_knn, "_BLOCK_NONZEROS", budget)
    params = {"neighbours": neighbours, "cooccurrence_window": window, "sequence_aware": aware}
    model = create_model("session-knn", params).fit(train)
    expected = brute_force_top(dense_cosine(train, window, aware), neighbours)
    actual = model.similarity.toarray()
    np.testing.assert_array_equal(actual != 0, expected != 0)
    np.testing.assert_allclose(actual, expected, rtol=1e-6)
    assert model.similarity.has_sorted_indices


def test_row_blocks_stay_under_the_budget_except_single_rows() -> None:
    nonzeros = np.array([3, 0, 4, 9, 1, 1, 2, 0])
    blocks = row_blocks(nonzeros, 5)
    assert blocks == [(0, 2), (2, 3), (3, 4), (4, 8)]
    assert row_blocks(np.zeros(0, dtype=np.int64), 5) == []
