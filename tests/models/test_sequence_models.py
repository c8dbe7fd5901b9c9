"""Next-item models: known answers for the count models, one-epoch smoke tests for the networks."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from segue.data.interactions import Holdout, Interactions, as_history
from segue.models.base import create_model, load_model, model_class

REPO = Path(__file__).resolve().parents[2]

NEURAL = ("lstm", "gru4rec", "sasrec")
SEQUENCE_MODELS = ("markov", "session-knn", *NEURAL)


@pytest.fixture(autouse=True)
def _one_torch_thread() -> None:
    """Tiny networks run faster on one thread than on two contended ones."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def interactions(*sequences: list[int], n_items: int) -> Interactions:
    return Interactions([np.array(s, dtype=np.int64) for s in sequences], n_items)


def holdout(histories: list[list[int]], targets: list[list[int]]) -> Holdout:
    return Holdout(
        [np.array(h, dtype=np.int64) for h in histories],
        [np.array(t, dtype=np.int64) for t in targets],
    )


# -- configs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_config_defaults_match_base_toml(name: str) -> None:
    table = tomllib.loads((REPO / "configs" / "base.toml").read_text())["models"][name]
    defaults = model_class(name).config_class().model_dump()
    assert {key: defaults[key] for key in table} == table


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_sequence_models_declare_that_order_matters(name: str) -> None:
    assert model_class(name).uses_order


def test_session_knn_refuses_sequence_awareness_without_a_window() -> None:
    with pytest.raises(ValueError, match="cooccurrence_window"):
        create_model("session-knn", {"sequence_aware": True, "cooccurrence_window": 0})


# -- markov ----------------------------------------------------------------------------------

# Transitions 0->1 (x2), 0->2, 1->2, 1->3; item counts 3, 2, 2, 1, 0 of 8.
MARKOV_TRAIN = ([0, 1, 2], [0, 1, 3], [0, 2])
POPULARITY = np.array([3, 2, 2, 1, 0]) / 8


def test_markov_mixes_transition_probabilities_with_popularity() -> None:
    model = create_model("markov", {"backoff_weight": 0.1}).fit(
        interactions(*MARKOV_TRAIN, n_items=5)
    )
    scores = model.score([[0], [2, 1]])
    after_0 = 0.9 * np.array([0, 2 / 3, 1 / 3, 0, 0]) + 0.1 * POPULARITY
    after_1 = 0.9 * np.array([0, 0, 1 / 2, 1 / 2, 0]) + 0.1 * POPULARITY
    np.testing.assert_allclose(scores, [after_0, after_1], rtol=1e-6)


def test_markov_backs_off_to_popularity_when_the_last_item_has_no_successor() -> None:
    model = create_model("markov").fit(interactions(*MARKOV_TRAIN, n_items=5))
    # Item 3 only ever ends a sequence; item 4 was never seen; [] is an empty history.
    np.testing.assert_allclose(model.score([[0, 3], [4], []]), [POPULARITY] * 3, rtol=1e-6)


def test_markov_decay_backs_off_to_earlier_items() -> None:
    model = create_model(
        "markov", {"backoff_weight": 0.1, "history_decay": 0.5, "history_window": 3}
    ).fit(interactions(*MARKOV_TRAIN, n_items=5))
    # Weights: 0 -> 0.5 (two steps back), 1 -> 1 (the last item with successors), 3 -> none.
    transition = (0.5 * np.array([0, 2 / 3, 1 / 3, 0, 0]) + np.array([0, 0, 1 / 2, 1 / 2, 0])) / 1.5
    np.testing.assert_allclose(
        model.score([[0, 1, 3]])[0], 0.9 * transition + 0.1 * POPULARITY, rtol=1e-6
    )


def test_markov_ignores_an_item_repeated_in_place() -> None:
    model = create_model("markov", {"backoff_weight": 0.0}).fit(interactions([0, 0, 1], n_items=3))
    np.testing.assert_allclose(model.score([[0]])[0], [0, 1, 0])


def _sparse_product_reference(model, histories: list[np.ndarray]) -> np.ndarray:
    """Markov scores as the sparse-matrix product computed them before per-item precomputation."""
    config = model.config
    rows, columns, values = [], [], []
    for row, history in enumerate(histories):
        recent = history[::-1][: config.history_window]
        if config.history_decay == 0.0:
            recent = recent[:1]
        rows.append(np.full(len(recent), row, dtype=np.int64))
        columns.append(recent)
        values.append(np.power(config.history_decay, np.arange(len(recent)), dtype=np.float64))
    weights = sp.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(columns))),
        shape=(len(histories), model.n_items),
    )
    weights.sum_duplicates()
    weights = weights.dot(sp.diags(model.has_successors.astype(np.float64))).tocsr()
    totals = np.asarray(weights.sum(axis=1)).ravel()
    normalised = sp.diags(1.0 / np.maximum(totals, 1e-12)).dot(weights)
    transition = np.asarray(normalised.dot(model.transitions).todense(), dtype=np.float32)
    backoff = np.where(totals > 0, config.backoff_weight, 1.0).astype(np.float32)
    return (1.0 - backoff)[:, None] * transition + backoff[:, None] * model.popularity


def _random_markov_case(seed: int) -> tuple[Interactions, list[list[int]]]:
    """Training sequences over 300 items (items 250+ never followed by anything, 280+ never
    seen) and histories: empty, unknown-only, successor-less, repeated items, long."""
    rng = np.random.default_rng(seed)
    n_items = 300
    sequences = [rng.integers(0, 250, size=int(rng.integers(1, 30))) for _ in range(200)]
    sequences += [np.array([int(rng.integers(0, 250)), item]) for item in range(250, 280)]
    histories = [
        [],
        [-1, n_items, n_items + 7],
        [260, 270, 290],
        [5, 5, 5],
        [3, 260, 3, 7, 7],
        *(rng.integers(-2, n_items + 2, size=int(rng.integers(1, 40))).tolist() for _ in range(60)),
    ]
    return interactions(*sequences, n_items=n_items), histories


@pytest.mark.parametrize(
    ("backoff_weight", "history_decay", "history_window"),
    [(0.1, 0.0, 5), (0.0, 0.0, 1), (0.3, 0.5, 3), (0.1, 0.9, 20), (1.0, 0.7, 5), (0.05, 0.2, 1)],
)
def test_markov_scores_match_the_sparse_product_reference(
    backoff_weight: float, history_decay: float, history_window: int
) -> None:
    train, histories = _random_markov_case(seed=int(100 * history_decay) + history_window)
    model = create_model(
        "markov",
        {
            "backoff_weight": backoff_weight,
            "history_decay": history_decay,
            "history_window": history_window,
        },
    ).fit(train)
    cleaned = [as_history(history, model.n_items) for history in histories]
    expected = _sparse_product_reference(model, cleaned)
    np.testing.assert_allclose(model.score(histories), expected, rtol=1e-6)
    # A row scores the same alone as in a batch.
    for index in (0, 1, 4, len(histories) - 1):
        np.testing.assert_allclose(model.score([histories[index]])[0], expected[index], rtol=1e-6)


def test_markov_saved_in_the_array_format_loads_and_scores_the_same(tmp_path: Path) -> None:
    train, histories = _random_markov_case(seed=3)
    model = create_model("markov", {"history_decay": 0.5}).fit(train)
    saved = model.save(tmp_path / "markov")
    with np.load(saved / "arrays.npz") as arrays:
        assert sorted(arrays.files) == [
            "popularity",
            "transitions_data",
            "transitions_indices",
            "transitions_indptr",
        ]
    loaded = load_model(saved)
    np.testing.assert_allclose(loaded.score(histories), model.score(histories), rtol=1e-6)


# -- session kNN -----------------------------------------------------------------------------


def test_session_knn_weighs_recent_songs_more() -> None:
    # 0 and 2 always together, 1 and 3 always together: both cosines are 1.
    train = interactions([0, 2], [2, 0], [1, 3], [3, 1], [4], n_items=5)
    model = create_model("session-knn", {"recency_decay": 0.8}).fit(train)
    scores = model.score([[0, 1], [1, 0]])
    np.testing.assert_allclose(scores[:, [2, 3]], [[0.8, 1.0], [1.0, 0.8]], rtol=1e-6)
    # Items no recent song points to come after the scored ones.
    assert scores[0, 4] < 0.8


def test_session_knn_sequence_aware_counts_only_songs_that_follow() -> None:
    train = interactions([0, 1], [0, 1], [2, 0], n_items=3)
    aware = create_model("session-knn", {"cooccurrence_window": 1, "sequence_aware": True}).fit(
        train
    )
    symmetric = create_model("session-knn").fit(train)
    # 1 follows 0 twice (counts 3 and 2): cosine 2 / sqrt(6); 2 only precedes 0.
    aware_scores, symmetric_scores = aware.score([[0]])[0], symmetric.score([[0]])[0]
    assert aware_scores[1] == pytest.approx(2 / np.sqrt(6), rel=1e-6)
    assert aware_scores[2] < aware_scores[1] / 2
    assert symmetric_scores[2] == pytest.approx(1 / np.sqrt(3), rel=1e-6)


def test_session_knn_keeps_only_the_strongest_neighbours_per_candidate() -> None:
    train = interactions([0, 2], [0, 2], [1, 2], [1, 3], n_items=4)
    # Candidate 2 co-occurs with 0 (cosine 2/sqrt(2*3)) and 1 (1/sqrt(2*3)).
    one = create_model("session-knn", {"neighbours": 1}).fit(train)
    two = create_model("session-knn", {"neighbours": 2}).fit(train)
    assert one.score([[0]])[0, 2] == pytest.approx(2 / np.sqrt(6), rel=1e-6)
    assert two.score([[1]])[0, 2] == pytest.approx(1 / np.sqrt(6), rel=1e-6)
    assert one.score([[1]])[0, 2] < 1 / np.sqrt(6)


# -- neural models ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", NEURAL)
def test_one_epoch_trains_with_a_finite_loss(name: str, chain_sequences: Interactions) -> None:
    validation = holdout([[1, 2, 3], [7, 8]], [[4], [9]])
    model = create_model(name, {"epochs": 1}, seed=3).fit(chain_sequences, validation)
    assert len(model.training_history) == 1
    record = model.training_history[0]
    assert np.isfinite(record["loss"]) and 0.0 <= record["val_ndcg_at_10"] <= 1.0
    assert np.isfinite(model.score([[0, 1], [5]])).all()


@pytest.mark.parametrize("name", ["gru4rec", "sasrec"])
def test_large_catalogue_path_trains_on_sampled_negatives(
    name: str, chain_sequences: Interactions
) -> None:
    params = {"epochs": 1, "full_softmax_max_items": 5, "sampled_negatives": 4}
    model = create_model(name, params).fit(chain_sequences)
    assert np.isfinite(model.training_history[0]["loss"])


@pytest.mark.parametrize("name", ["gru4rec", "sasrec"])
def test_only_the_last_max_length_items_are_read(name: str, chain_sequences: Interactions) -> None:
    model = create_model(name, {"epochs": 1, "max_length": 4}).fit(chain_sequences)
    long, recent = [9, 0, 1, 2, 3, 4, 5], [2, 3, 4, 5]
    np.testing.assert_allclose(model.score([long]), model.score([recent]), rtol=1e-5, atol=1e-6)


def test_lstm_keeps_the_original_architecture(chain_sequences: Interactions) -> None:
    model = create_model("lstm", {"epochs": 1}).fit(chain_sequences)
    network = model.network
    assert network.embedding.embedding_dim == 16
    assert network.embedding.num_embeddings == chain_sequences.n_items + 1  # + padding
    assert (network.lstm.input_size, network.lstm.hidden_size) == (16, 64)
    assert network.lstm.num_layers == 5
    assert (network.dense.in_features, network.dense.out_features) == (64, 128)
    assert network.output.out_features == chain_sequences.n_items
    assert model.config.window == 2


def test_lstm_reads_only_the_last_window(chain_sequences: Interactions) -> None:
    model = create_model("lstm", {"epochs": 1}).fit(chain_sequences)
    np.testing.assert_allclose(model.score([[5, 6, 7, 8]]), model.score([[7, 8]]), rtol=1e-6)


def test_saved_network_is_rebuilt_from_config(
    tmp_path: Path, chain_sequences: Interactions
) -> None:
    model = create_model("sasrec", {"epochs": 1, "num_blocks": 1, "embedding_dim": 8})
    model.fit(chain_sequences).save(tmp_path / "sasrec")
    with np.load(tmp_path / "sasrec" / "arrays.npz", allow_pickle=False) as arrays:
        assert arrays["net.items.weight"].shape == (chain_sequences.n_items + 1, 8)


# -- batching helpers ------------------------------------------------------------------------


def test_chunks_cover_every_transition_once() -> None:
    from segue.models.sequence_training import next_item_chunks

    chunks = next_item_chunks([np.arange(7)], length=3, pad_index=99, align="right")
    np.testing.assert_array_equal(chunks, [[3, 4, 5, 6], [0, 1, 2, 3]])
    short = next_item_chunks(
        [np.array([7, 8]), np.array([9])], length=3, pad_index=99, align="left"
    )
    np.testing.assert_array_equal(short, [[7, 8, 99, 99]])


def test_windows_pad_the_start_of_each_sequence() -> None:
    from segue.models.sequence_training import window_examples

    inputs, targets = window_examples([np.array([5, 6, 7]), np.array([8])], 2, pad_index=9)
    np.testing.assert_array_equal(inputs, [[9, 5], [5, 6]])
    np.testing.assert_array_equal(targets, [6, 7])


def test_histories_are_cut_and_padded_on_the_requested_side() -> None:
    from segue.models.sequence_training import pad_histories

    histories = [np.array([1, 2, 3, 4]), np.array([5]), np.array([], dtype=np.int64)]
    right = pad_histories(histories, 3, pad_index=0, align="right")
    left = pad_histories(histories, 3, pad_index=0, align="left")
    np.testing.assert_array_equal(right, [[2, 3, 4], [0, 0, 5], [0, 0, 0]])
    np.testing.assert_array_equal(left, [[2, 3, 4], [5, 0, 0], [0, 0, 0]])
