"""User-item models: closed forms checked by hand, one-epoch smoke tests, and a MovieLens check."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from segue.data.interactions import Holdout, Interactions
from segue.models.base import FitTooLargeError, create_model, format_bytes, load_model, model_class
from segue.models.ease import ease_weights, sparse_ease_weights

REPO = Path(__file__).resolve().parents[2]

NEURAL = ("autoencoder", "mult-vae")
USER_ITEM_MODELS = ("item-knn", "ease", "als", *NEURAL)


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tiny networks run faster on one thread than on two contended ones."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def interactions(*sequences: list[int], n_items: int) -> Interactions:
    return Interactions([np.array(s, dtype=np.int64) for s in sequences], n_items)


# -- configs and declarations ----------------------------------------------------------------


@pytest.mark.parametrize("name", USER_ITEM_MODELS)
def test_config_defaults_match_base_toml(name: str) -> None:
    table = tomllib.loads((REPO / "configs" / "base.toml").read_text())["models"][name]
    defaults = model_class(name).config_class().model_dump()
    assert {key: defaults[key] for key in table} == table
    assert set(defaults) == set(table), "every hyperparameter is documented in base.toml"


@pytest.mark.parametrize("name", USER_ITEM_MODELS)
def test_user_item_models_ignore_order(name: str, checkerboard: Interactions) -> None:
    cls = model_class(name)
    assert cls.tasks == frozenset({"user-items"}) and not cls.uses_order
    model = create_model(name, {"epochs": 1} if name in NEURAL else {}, seed=1).fit(checkerboard)
    np.testing.assert_allclose(model.score([[6, 0, 2]]), model.score([[0, 2, 6]]), rtol=1e-6)


@pytest.mark.parametrize(
    ("name", "params"),
    [("als", {"alpha": 0.5}), ("ease", {"l2": 0.0}), ("mult-vae", {"dropout": 1.0})],
)
def test_out_of_range_hyperparameters_are_refused(name: str, params: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(params))):
        create_model(name, params)


# -- EASE ------------------------------------------------------------------------------------


def test_ease_matches_the_hand_computed_closed_form() -> None:
    # X^T X + I = [[3,2,1],[2,4,2],[1,2,3]], whose inverse is [[8,-4,0],[-4,8,-4],[0,-4,8]] / 16,
    # so B_ij = -P_ij / P_jj = [[0,.5,0],[.5,0,.5],[0,.5,0]].
    data = interactions([0, 1], [1, 2], [0, 1, 2], n_items=3)
    model = create_model("ease", {"l2": 1.0}).fit(data)
    expected = np.array([[0, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0]], dtype=np.float32)
    np.testing.assert_allclose(model.weights, expected, atol=1e-6)
    np.testing.assert_allclose(model.score([[1], [0, 2]]), [[0.5, 0, 0.5], [0, 1.0, 0]], atol=1e-6)


def test_ease_few_users_path_equals_the_direct_inverse() -> None:
    from segue.models.ease import ease_weights

    rng = np.random.default_rng(3)
    few_users = sp.csr_matrix((rng.random((6, 15)) < 0.4).astype(np.float32))
    # Empty users leave X^T X unchanged but make users outnumber items: the direct path.
    many_users = sp.vstack([few_users, sp.csr_matrix((20, 15), dtype=np.float32)]).tocsr()
    np.testing.assert_allclose(
        ease_weights(few_users, 2.0), ease_weights(many_users, 2.0), atol=1e-5
    )


@pytest.mark.parametrize("extra_users", [0, 40])  # fewer users than items, then more
def test_sparse_ease_keeping_every_weight_is_dense_ease(extra_users: int) -> None:
    rng = np.random.default_rng(4)
    matrix = sp.csr_matrix((rng.random((12, 30)) < 0.3).astype(np.float32))
    matrix = sp.vstack([matrix, sp.csr_matrix((extra_users, 30), dtype=np.float32)]).tocsr()
    dense = ease_weights(matrix, 5.0)
    np.testing.assert_allclose(
        sparse_ease_weights(matrix, 5.0, per_item=30).toarray(), dense, atol=1e-5
    )


@pytest.mark.parametrize("extra_users", [0, 80])  # both routes of the fit
def test_sparse_ease_keeps_the_strongest_weights_of_the_whole_matrix(
    extra_users: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("segue.models.ease._BLOCK_ENTRIES", 200)  # five blocks of 8 columns
    rng = np.random.default_rng(5)
    matrix = sp.csr_matrix((rng.random((50, 40)) < 0.25).astype(np.float32))
    matrix = sp.vstack([matrix, sp.csr_matrix((extra_users, 40), dtype=np.float32)]).tocsr()
    dense = ease_weights(matrix, 3.0)
    sparse = sparse_ease_weights(matrix, 3.0, per_item=6)
    assert sparse.nnz == 40 * 6
    strongest = np.sort(np.abs(dense).ravel())[::-1][: 40 * 6]
    np.testing.assert_allclose(np.sort(np.abs(sparse.data))[::-1], strongest, rtol=1e-4)
    kept = sparse.tocoo()
    np.testing.assert_allclose(kept.data, dense[kept.row, kept.col], rtol=1e-4)


def test_ease_above_dense_max_items_is_sparse_in_memory_and_on_disk(
    checkerboard: Interactions, tmp_path: Path
) -> None:
    sparse = create_model("ease", {"dense_max_items": 10, "weights_per_item": 4}).fit(checkerboard)
    dense = create_model("ease").fit(checkerboard)
    assert sp.issparse(sparse.weights) and not sp.issparse(dense.weights)
    assert sparse.weights.nnz <= 20 * 4
    saved = sparse.save(tmp_path / "sparse")
    with np.load(saved / "arrays.npz", allow_pickle=False) as arrays:
        assert set(arrays.files) == {"weights_data", "weights_indices", "weights_indptr"}
        assert arrays["weights_data"].dtype == np.float32
    histories = [[0, 2, 4], [1], []]
    np.testing.assert_array_equal(load_model(saved).score(histories), sparse.score(histories))
    # the strongest weights carry the known answer: even history -> even items
    scores = sparse.score([[0, 2, 4, 6]])[0]
    assert scores[8::2].mean() > scores[1::2].mean()


def test_ease_scores_equal_the_product_with_its_weights(checkerboard: Interactions) -> None:
    for params in ({}, {"dense_max_items": 0, "weights_per_item": 5}):
        model = create_model("ease", params).fit(checkerboard)
        histories = [np.array([0, 2, 2, 4]), np.array([1]), np.arange(20)]
        expected = Interactions(histories, 20).to_csr() @ model.weights
        expected = expected.toarray() if sp.issparse(expected) else np.asarray(expected)
        np.testing.assert_array_equal(model.score(histories), expected)


def test_ease_too_large_for_the_machine_is_refused_before_allocating(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 300,000 items dense: 360 GB of float32 weights alone.
    data = interactions([0, 1], [1, 299_999], n_items=300_000)
    model = create_model("ease", {"dense_max_items": 1_000_000})
    monkeypatch.setattr(
        "segue.models.ease.ease_weights", lambda *a: pytest.fail("fit started allocating")
    )
    with pytest.raises(FitTooLargeError, match="available on this machine") as refused:
        model.fit(data)
    assert refused.value.estimate_bytes >= 4 * 300_000**2
    assert format_bytes(refused.value.estimate_bytes) in str(refused.value)
    assert "sparse EASE needs about" in str(refused.value)
    assert model.n_items == 0


def test_ease_over_the_configured_cap_names_the_estimate_and_the_cap() -> None:
    # 2,000 items: about 16 MB of dense weights, above a 5 MB cap, far below the machine.
    data = interactions(*([i, (i + 1) % 2000] for i in range(0, 2000, 2)), n_items=2000)
    capped = create_model("ease", memory_limit_gb=5 / 1024)
    with pytest.raises(FitTooLargeError, match=r"training\.memory_limit_gb") as refused:
        capped.fit(data)
    message = str(refused.value)
    assert format_bytes(capped.estimate_fit_bytes(data)) in message
    assert "5.0 MB" in message
    assert refused.value.limit_bytes == 5 * 1024**2
    create_model("ease", memory_limit_gb=1.0).fit(data)  # a cap above the estimate lets it fit


# -- item-kNN --------------------------------------------------------------------------------


def test_item_knn_shrinkage_favours_pairs_seen_together_often() -> None:
    # Items 0 and 1 share one user; items 2 and 3 share ten. Both pairs have cosine 1.
    data = interactions([0, 1], *([2, 3] for _ in range(10)), n_items=4)
    plain = create_model("item-knn", {"shrinkage": 0.0}).fit(data)
    np.testing.assert_allclose(plain.score([[0], [2]])[:, [1, 3]], [[1, 0], [0, 1]], atol=1e-6)
    shrunk = create_model("item-knn", {"shrinkage": 10.0}).fit(data)
    # co / (sqrt(n_i) sqrt(n_j) + shrinkage): 1 / (1 + 10) and 10 / (10 + 10).
    np.testing.assert_allclose(
        shrunk.score([[0], [2]])[:, [1, 3]], [[1 / 11, 0], [0, 0.5]], atol=1e-6
    )


def test_item_knn_keeps_only_each_items_nearest_neighbours() -> None:
    # Item 0 is closer to item 1 (2 / sqrt(6)) than to item 2 (1 / sqrt(3)).
    data = interactions([0, 1], [0, 1], [0, 2], n_items=3)
    one = create_model("item-knn", {"neighbours": 1, "shrinkage": 0.0}).fit(data)
    two = create_model("item-knn", {"neighbours": 2, "shrinkage": 0.0}).fit(data)
    assert one.score([[2]])[0, 0] == 0.0
    np.testing.assert_allclose(one.score([[1]])[0, 0], 2 / np.sqrt(6), rtol=1e-6)
    np.testing.assert_allclose(two.score([[2]])[0, 0], 1 / np.sqrt(3), rtol=1e-6)


# -- ALS -------------------------------------------------------------------------------------


def test_als_user_factor_is_implicits_own_user_step(checkerboard: Interactions) -> None:
    from implicit.cpu.als import AlternatingLeastSquares

    model = create_model("als", {"factors": 4, "iterations": 3}, seed=2).fit(checkerboard)
    reference = AlternatingLeastSquares(
        factors=4, regularization=model.config.regularization, alpha=model.config.alpha
    )
    reference.item_factors = model.item_factors
    histories = [np.array([0, 2, 4]), np.array([1, 3, 5, 7, 9])]
    users = Interactions(histories, checkerboard.n_items).to_csr()
    expected = reference.recalculate_user(np.arange(2), users)
    np.testing.assert_allclose(model.user_factors(histories), expected, rtol=1e-4, atol=1e-5)


# -- neural smoke tests ----------------------------------------------------------------------


@pytest.mark.parametrize("name", NEURAL)
def test_one_epoch_trains_and_records_validation(name: str, checkerboard: Interactions) -> None:
    validation = Holdout([np.array([0, 2]), np.array([1, 3])], [np.array([4]), np.array([5])])
    model = create_model(name, {"epochs": 1, "hidden_size": 8}, seed=0)
    model.fit(checkerboard, validation)
    (record,) = model.training_history
    assert record["epoch"] == 1.0
    assert np.isfinite(record["loss"])
    assert 0.0 <= record["val_ndcg_at_10"] <= 1.0


def test_autoencoder_keeps_the_original_architecture(checkerboard: Interactions) -> None:
    model = create_model("autoencoder", {"epochs": 1}).fit(checkerboard)
    shapes = {key: tuple(value.shape) for key, value in model._state().items()}
    assert shapes == {
        "net.0.weight": (256, 20),
        "net.0.bias": (256,),
        "net.2.weight": (20, 256),
        "net.2.bias": (20,),
    }


# -- MovieLens: the original protocol --------------------------------------------------------


def read_all_ratings_as_positives(directory: Path) -> Interactions:
    """Every rating of ml-latest-small as a positive, each user's items in time order."""
    ratings = pd.read_csv(directory / "ratings.csv").sort_values(["userId", "timestamp", "movieId"])
    movies = np.sort(ratings["movieId"].unique())
    ratings["item"] = np.searchsorted(movies, ratings["movieId"].to_numpy())
    grouped = ratings.groupby("userId", sort=True)["item"]
    return Interactions(
        [group.to_numpy(dtype=np.int64) for _, group in grouped],
        len(movies),
        [str(user) for user in grouped.groups],
    )


@pytest.mark.movielens
@pytest.mark.slow
def test_ease_reaches_the_reference_ndcg_on_the_original_split(movielens_small: Path) -> None:
    """Original protocol: 10 random test items per user (seed 42), trained on all the rest."""
    from segue.data.splits import split_random_holdout
    from segue.evaluation.evaluator import full_ranking_metrics

    split = split_random_holdout(read_all_ratings_as_positives(movielens_small), n=10, seed=42)
    train = Interactions(split.test.histories, split.train.n_items, split.test.sequence_ids)
    model = create_model("ease", seed=42).fit(train)
    ndcg = full_ranking_metrics(model, split.test, (10,))["ndcg_at_10"]
    # The reference is 0.215; far above would mean held-out items leaked into training.
    assert 0.205 <= ndcg <= 0.25


# -- EDLAE and RP3beta -----------------------------------------------------------------------


def test_edlae_matches_the_hand_computed_closed_form() -> None:
    # G = X^T X = [[2,2,1],[2,3,2],[1,2,2]]; dropout 0.5 adds 0.5/0.5 * diag(G) to l2 = 1, so
    # G + L = [[5,2,1],[2,7,2],[1,2,5]], whose inverse is [[31,-8,-3],[-8,24,-8],[-3,-8,31]] / 136,
    # and B_ij = -P_ij / P_jj.
    data = interactions([0, 1], [1, 2], [0, 1, 2], n_items=3)
    model = create_model("edlae", {"l2": 1.0, "dropout": 0.5}).fit(data)
    expected = np.array([[0, 8 / 24, 3 / 31], [8 / 31, 0, 8 / 31], [3 / 31, 8 / 24, 0]])
    np.testing.assert_allclose(model.weights, expected, atol=1e-6)
    np.testing.assert_allclose(model.score([[1]]), [expected[1]], atol=1e-6)


@pytest.mark.parametrize("extra_users", [0, 40])  # fewer users than items, then more
def test_edlae_without_dropout_is_ease_and_dropout_penalises_popular_items(
    extra_users: int,
) -> None:
    from segue.models.edlae import edlae_weights

    rng = np.random.default_rng(5)
    matrix = sp.csr_matrix((rng.random((12, 30)) < 0.3).astype(np.float32))
    matrix = sp.vstack([matrix, sp.csr_matrix((extra_users, 30), dtype=np.float32)]).tocsr()
    np.testing.assert_allclose(
        edlae_weights(matrix, 5.0, 0.0), ease_weights(matrix, 5.0), atol=1e-5
    )
    gram = (matrix.T @ matrix).toarray().astype(np.float64)
    counts = np.diag(gram).copy()
    inverse = np.linalg.inv(gram + np.diag(5.0 + 0.25 / 0.75 * counts))
    expected = -inverse / np.diag(inverse)
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(edlae_weights(matrix, 5.0, 0.25), expected, atol=1e-5)


def test_rp3beta_matches_the_hand_computed_walks() -> None:
    # Users {0,1}, {1,2}, {0,1,2}: user degrees 2, 2, 3; item popularities 2, 3, 2. With alpha 1
    # and beta 1, W_ij = (sum over users with i and j of 1/deg_u) / pop_i / pop_j, e.g.
    # W_01 = (1/2 + 1/3) / 2 / 3 = 5/36 and W_02 = (1/3) / 2 / 2 = 1/12.
    data = interactions([0, 1], [1, 2], [0, 1, 2], n_items=3)
    model = create_model("rp3beta", {"alpha": 1.0, "beta": 1.0}).fit(data)
    expected = np.array([[0, 5 / 36, 1 / 12], [5 / 36, 0, 5 / 36], [1 / 12, 5 / 36, 0]])
    np.testing.assert_allclose(model.weights, expected, atol=1e-7)
    # beta 0 leaves the arrival item unpenalised: W_01 = (5/6) / pop_0 = 5/12.
    plain = create_model("rp3beta", {"alpha": 1.0, "beta": 0.0}).fit(data)
    assert plain.weights[0, 1] == pytest.approx(5 / 12)
    np.testing.assert_allclose(model.score([[0]]), [expected[0]], atol=1e-7)
