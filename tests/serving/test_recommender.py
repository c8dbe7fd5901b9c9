"""ServingModel on its own: fallbacks, exclusion of history, the known-user score cache."""

from __future__ import annotations

import numpy as np
import pytest

from segue.ranking.ban_list import BanList
from segue.serving import recommender
from segue.serving.recommender import ListRules, ModelVersion, ScoreRows, ServingModel

from .support import next_song_package, user_items_package

VERSION = ModelVersion("dev.segue-user-items", "1")


def test_known_user_lists_are_cached_and_unchanged_by_the_cache() -> None:
    model = ServingModel("user-items", VERSION, user_items_package(), 85.0)
    first = model.recommend(model.user_request("3", 5, ListRules()))
    assert model._known_scores.get("3") is not None
    second = model.recommend(model.user_request("3", 5, ListRules()))
    assert first == second
    history = model.package.user_histories["3"]
    assert not {entry.item for entry in first.items} & set(history.tolist())


def test_score_rows_evict_the_least_recently_used() -> None:
    rows = ScoreRows(capacity=2)
    for key in ("a", "b"):
        rows.put(key, np.zeros(3, dtype=np.float32))
    rows.get("a")
    rows.put("c", np.ones(3, dtype=np.float32))
    assert rows.get("b") is None and rows.get("a") is not None and rows.get("c") is not None
    assert not rows.get("c").flags.writeable
    ScoreRows(capacity=0).put("x", np.zeros(1, dtype=np.float32))  # disabled: no error


def test_a_model_that_cannot_score_falls_back_to_popularity() -> None:
    package = next_song_package("most-popular")
    model = ServingModel("next-song", VERSION, package, 85.0)
    package.scorer._score = lambda histories: np.full((len(histories), 13), np.nan)
    result = model.recommend(model.next_songs_request(["iu|palette"], 3, ListRules()))
    assert result.fallback == "model cannot score"
    assert len(result.items) == 3 and 1 not in {entry.item for entry in result.items}


def test_version_info_is_read_from_mlflow_like_objects_and_mappings() -> None:
    class Info:
        name, version = "m", 3

    assert ModelVersion.from_info(Info()) == ModelVersion("m", "3")
    assert ModelVersion.from_info({"name": "m", "version": "4"}) == ModelVersion("m", "4")


def test_markov_lists_from_base_rows_are_the_lists_of_dense_rows(monkeypatch) -> None:
    package = next_song_package("markov")
    model = ServingModel("next-song", VERSION, package, 85.0)
    keys = list(model.keys)
    requests = [
        model.next_songs_request(keys[start : start + 3], k, ListRules(), exclude=keys[-2:])
        for start, k in ((0, 5), (4, 3), (7, 20))
    ]
    assert package.scorer.score_base_rows([requests[0].history]) is not None
    from_base_rows = model.recommend_many(requests)
    monkeypatch.setattr(package.scorer, "score_base_rows", lambda histories: None)
    assert model.recommend_many(requests) == from_base_rows
    # k over what is left: every song but the 3 heard and the 2 excluded, of 13.
    assert [len(result.items) for result in from_base_rows] == [5, 3, 8]


def test_ease_lists_from_summed_weight_rows_are_the_lists_of_the_general_path() -> None:
    package = user_items_package("ease")
    model = ServingModel("user-items", VERSION, package, 85.0)
    assert package.scorer.summed_weight_rows() is not None
    keys = list(model.keys)
    plain = model.recommend(model.history_request(keys[5:12], 3, ListRules()))
    best_two = frozenset(keys[entry.item] for entry in plain.items[:2])
    bans = ListRules(ban_list=BanList(keys=best_two, artists=frozenset()))
    requests = [
        model.history_request(keys[:3], 5, ListRules()),
        model.history_request([*keys[5:12], "unknown"], 3, bans),
        model.history_request(["unknown"], 4, ListRules()),  # nothing known: popularity
        model.user_request("3", 5, ListRules()),  # a known user: the score cache's path
        model.history_request(keys[::2], 40, bans),  # k over what is left
    ]
    fast = model.recommend_many(requests)
    assert model._row_bounds is not None  # only the blocks of columns that can reach a list
    model._row_bounds = None
    assert model.recommend_many(requests) == fast  # every column added up
    model._row_weights = None
    general = model.recommend_many(requests)
    assert fast == general
    assert [result.fallback for result in fast] == [None, None, "no known items", None, None]
    assert fast[1].unmatched == ["unknown"] and fast[1].removed.ban_list == 2
    assert [entry.item for entry in fast[1].items][:1] == [plain.items[2].item]
    assert len(fast[4].items) == 15  # all but the 15 heard (the two banned among them)


def test_quick_lists_are_the_served_lists_within_the_cell_budget(monkeypatch) -> None:
    model = ServingModel("user-items", VERSION, user_items_package("ease"), 85.0)
    keys = list(model.keys)
    request = model.history_request(keys[:3], 5, ListRules())
    assert model.quick_list(request) == model.recommend(request)
    # A known user's row comes from the score cache (the general path): not quick.
    assert model.quick_list(model.user_request("3", 5, ListRules())) is None
    monkeypatch.setattr(recommender, "QUICK_LIST_CELLS", 2 * len(keys))
    assert model.quick_list(request) is None  # 3 rows over a budget of 2
    assert model.quick_list(model.history_request(keys[:2], 5, ListRules())) is not None


@pytest.mark.parametrize("algorithm", ["item-knn", "ease"])
def test_known_users_lists_from_kept_rows_are_the_lists_of_the_general_path(algorithm) -> None:
    model = ServingModel("user-items", VERSION, user_items_package(algorithm), 85.0)
    keys = list(model.keys)
    bans = ListRules(ban_list=BanList(keys=frozenset(keys[:4]), artists=frozenset()))
    requests = [
        model.user_request(user, k, rules)
        for user in ("1", "3")
        for k, rules in ((5, ListRules()), (3, bans), (40, bans))
    ]
    assert all(model._listed(request) is None for request in requests)  # nothing kept yet
    general = model.recommend_many(requests)  # scores and keeps both users' rows
    assert all(model._listed(request) is not None for request in requests)
    assert model.recommend_many(requests) == general
    assert any(result.removed.ban_list for result in general)
