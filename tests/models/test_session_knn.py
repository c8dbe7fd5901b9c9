"""Session-kNN's sparse, blocked similarity against a dense brute-force reference, and the memory
estimate its fit is guarded by."""

from __future__ import annotations

import numpy as np
import pytest

from segue.data.interactions import Interactions
from segue.models import session_knn
from segue.models.base import FitTooLargeError, create_model, format_bytes
from segue.models.session_knn import row_blocks, sequence_sizes

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


def test_sequence_sizes_count_lengths_and_the_items_that_occur() -> None:
    sequences = [np.array([3, 1, 3]), np.array([0]), np.array([], dtype=np.int64)]
    lengths, occurring = sequence_sizes(sequences, 6)
    assert lengths.tolist() == [3, 1, 0]
    assert occurring == 3


def _estimate(data: Interactions, **params: object) -> int:
    return create_model("session-knn", params).estimate_fit_bytes(data)


def test_the_memory_estimate_grows_with_interactions_neighbours_window_and_block(
    train: Interactions, monkeypatch: pytest.MonkeyPatch
) -> None:
    doubled = Interactions(train.sequences * 2, N_ITEMS)
    assert _estimate(doubled) > _estimate(train)
    assert _estimate(train, neighbours=3) > _estimate(train, neighbours=1)
    assert _estimate(train, cooccurrence_window=4) > _estimate(train, cooccurrence_window=1)
    # Only the songs that follow: half the windowed pairs.
    assert _estimate(train, cooccurrence_window=4, sequence_aware=True) < _estimate(
        train, cooccurrence_window=4
    )
    monkeypatch.setattr(session_knn, "_BLOCK_NONZEROS", 10)
    small_blocks = _estimate(train)
    monkeypatch.setattr(session_knn, "_BLOCK_NONZEROS", 1000)
    assert _estimate(train) > small_blocks


def test_items_that_never_occur_cost_only_their_per_item_arrays(train: Interactions) -> None:
    # 100,000 more catalogue items, none in a sequence: no pair, block or kept neighbour more.
    larger = Interactions(train.sequences, N_ITEMS + 100_000)
    assert 0 < _estimate(larger) - _estimate(train) <= 64 * 100_000


def test_a_fit_above_the_configured_cap_is_refused_naming_session_knn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 1,000 playlists of 100 songs out of 50,000: about 0.3 GB estimated, above a 0.1 GB cap.
    rng = np.random.default_rng(3)
    playlists = [rng.choice(50_000, 100, replace=False) for _ in range(1_000)]
    data = Interactions(playlists, 50_000)
    capped = create_model("session-knn", memory_limit_gb=0.1)
    monkeypatch.setattr(capped, "_fit", lambda *args: pytest.fail("the fit started"))
    with pytest.raises(FitTooLargeError, match=r"^session-knn: ") as refused:
        capped.fit(data)
    message = str(refused.value)
    assert refused.value.estimate_bytes == capped.estimate_fit_bytes(data) > 0.1 * 1024**3
    assert format_bytes(refused.value.estimate_bytes) in message
    assert "cap training.memory_limit_gb" in message
    assert "fewer neighbours" in message
    create_model("session-knn", memory_limit_gb=1.0).check_fit_memory(data)  # 1 GB is enough
