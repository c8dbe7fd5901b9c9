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
from segue.models.base import create_model, model_class

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
