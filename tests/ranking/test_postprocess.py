"""Each business rule of the post-processing pipeline on its own, on hand-checkable catalogues."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segue.data.interactions import as_history
from segue.models.weight_rows import sum_dense_rows
from segue.ranking.ban_list import parse_ban_list
from segue.ranking.postprocess import (
    PostProcessConfig,
    RankingCatalogue,
    RemovedItems,
    cap_per_artist,
    rank_items,
    rank_lists,
    rank_lists_counted,
    rank_score_row,
    rank_weight_row_sum,
    weight_row_bounds,
)

# Ten songs by three artists; the model prefers lower indices (score 10 - index).
ARTISTS = ["A", "A", "A", "A", "B", "B", "B", "C", "C", "C"]
KEYS = [f"s{i}" for i in range(10)]
SCORES = np.arange(10, 0, -1).astype(np.float32)


def catalogue(counts: list[int] | None = None, histories: list[list[int]] | None = None):
    counts = counts if counts is not None else [10] * 10
    arrays = None if histories is None else [np.array(h) for h in histories]
    return RankingCatalogue.from_items(
        pd.DataFrame(
            {"item": range(10), "key": KEYS, "artist": ARTISTS, "title": KEYS, "count": counts}
        ),
        arrays,
    )


def items(ranked) -> list[int]:
    return [entry.item for entry in ranked]


def test_plain_top_k_keeps_the_model_order_and_scores() -> None:
    ranked = rank_items(SCORES, 3, catalogue())
    assert items(ranked) == [0, 1, 2]
    assert [entry.score for entry in ranked] == [10.0, 9.0, 8.0]


def test_excluded_items_never_appear() -> None:
    assert items(rank_items(SCORES, 3, catalogue(), exclude=[0, 2, 99, -1])) == [1, 3, 4]


def test_unscorable_items_never_appear_and_short_lists_stay_short() -> None:
    scores = np.full(10, np.nan, dtype=np.float32)
    scores[[3, 7]] = [1.0, 2.0]
    assert items(rank_items(scores, 5, catalogue())) == [7, 3]


def test_ban_list_removes_keys_and_whole_artists() -> None:
    ban_list = parse_ban_list("s0\nartist:b\n")
    assert items(rank_items(SCORES, 4, catalogue(), ban_list=ban_list)) == [1, 2, 3, 7]


def test_artist_cap_keeps_at_most_n_per_artist_and_fills_the_list() -> None:
    config = PostProcessConfig(max_per_artist=1)
    assert items(rank_items(SCORES, 3, catalogue(), config=config)) == [0, 4, 7]
    config = PostProcessConfig(max_per_artist=2)
    assert items(rank_items(SCORES, 5, catalogue(), config=config)) == [0, 1, 4, 5, 7]


def test_artist_cap_returns_fewer_items_when_the_catalogue_runs_out() -> None:
    config = PostProcessConfig(max_per_artist=1)
    assert items(rank_items(SCORES, 10, catalogue(), config=config)) == [0, 4, 7]


def test_items_without_artist_are_not_capped_together() -> None:
    codes = np.array([-1, -1, -1, 0, 0])
    assert cap_per_artist(np.arange(5), codes, 1, 5).tolist() == [0, 1, 2, 3]


def test_unpopular_rerank_at_full_weight_orders_by_rising_popularity() -> None:
    counts = [100, 90, 80, 70, 60, 50, 40, 30, 20, 10]
    config = PostProcessConfig(rerank="unpopular", rerank_weight=1.0)
    ranked = rank_items(SCORES, 3, catalogue(counts), config=config)
    assert items(ranked) == [9, 8, 7]
    assert [entry.score for entry in ranked] == [1.0, 2.0, 3.0]  # the model's scores are kept


def test_unpopular_rerank_lowers_mean_popularity_at_a_middle_weight() -> None:
    counts = [100, 90, 80, 70, 60, 50, 40, 30, 20, 10]
    plain = items(rank_items(SCORES, 4, catalogue(counts)))
    config = PostProcessConfig(rerank="unpopular", rerank_weight=0.6)
    reranked = items(rank_items(SCORES, 4, catalogue(counts), config=config))
    assert np.mean([counts[i] for i in reranked]) < np.mean([counts[i] for i in plain])
    assert reranked != plain


def test_zero_weight_rerank_changes_nothing() -> None:
    for mode in ("diversity", "unpopular"):
        config = PostProcessConfig(rerank=mode, rerank_weight=0.0)
        assert items(rank_items(SCORES, 5, catalogue(), config=config)) == [0, 1, 2, 3, 4]


def test_diversity_rerank_spreads_artists() -> None:
    config = PostProcessConfig(rerank="diversity", rerank_weight=0.5)
    ranked = items(rank_items(SCORES, 3, catalogue(), config=config))
    assert {ARTISTS[i] for i in ranked} == {"A", "B", "C"}
    assert ranked[0] == 0  # the best item still leads


def test_diversity_rerank_uses_co_occurrence_when_artists_are_unknown() -> None:
    # Items 0 and 1 always appear together; item 2 never with them.
    histories = [[0, 1], [0, 1], [0, 1], [2, 3], [2, 4]]
    frame = pd.DataFrame(
        {"item": range(5), "key": KEYS[:5], "artist": [""] * 5, "title": KEYS[:5], "count": [1] * 5}
    )
    no_artists = RankingCatalogue.from_items(frame, [np.array(h) for h in histories])
    scores = np.array([5, 4.9, 4, 1, 1], dtype=np.float32)
    assert items(rank_items(scores, 2, no_artists)) == [0, 1]
    config = PostProcessConfig(rerank="diversity", rerank_weight=0.5)
    assert items(rank_items(scores, 2, no_artists, config=config)) == [0, 2]


def test_rules_compose_exclusion_ban_and_cap() -> None:
    config = PostProcessConfig(max_per_artist=1)
    ranked = rank_items(
        SCORES, 3, catalogue(), exclude=[4], ban_list=parse_ban_list("artist:c"), config=config
    )
    assert items(ranked) == [0, 5]


def test_config_from_settings_and_validation() -> None:
    from segue.settings import load_settings

    settings = load_settings("dev", ["serving.max_per_artist=2", "serving.rerank='diversity'"])
    config = PostProcessConfig.from_settings(settings.serving)
    assert (config.max_per_artist, config.rerank) == (2, "diversity")
    with pytest.raises(ValueError, match="rerank"):
        PostProcessConfig(rerank="random")  # type: ignore[arg-type]


def test_wrong_score_length_is_refused() -> None:
    with pytest.raises(ValueError, match="expected 10 scores"):
        rank_items(np.ones(3, dtype=np.float32), 2, catalogue())


@pytest.mark.parametrize(
    "config",
    [PostProcessConfig(), PostProcessConfig(max_per_artist=1)],
    ids=["top-k", "artist cap"],
)
def test_a_batch_of_lists_equals_each_list_ranked_alone(config: PostProcessConfig) -> None:
    rng = np.random.default_rng(3)
    scores = rng.random((4, 10)).astype(np.float32)
    scores[2, 5] = np.nan  # an item the model cannot score, in one row only
    ks = [3, 1, 6, 0]
    exclusions = [[0, 1], [], [9], [2]]
    ban_list = parse_ban_list("s4")
    together = rank_lists(scores, ks, catalogue(), exclusions, ban_list=ban_list, config=config)
    alone = [
        rank_items(row, k, catalogue(), exclude=excluded, ban_list=ban_list, config=config)
        for row, k, excluded in zip(scores, ks, exclusions)
    ]
    assert together == alone
    assert [len(ranked) for ranked in together] == [
        min(k, 3 if config.max_per_artist else k) for k in ks
    ]


def test_a_batch_needs_one_k_and_one_exclusion_list_per_row() -> None:
    with pytest.raises(ValueError, match="one k and one exclusion list per row"):
        rank_lists(np.ones((2, 10), dtype=np.float32), [3], catalogue(), [[], []])


def test_removed_items_are_counted_once_by_the_first_rule_that_removed_them() -> None:
    # Seen 0 and 5; excluded 1, 0 (already seen) and 9; s2 banned. The list is 3, 4, 6 (lowest
    # score 4): seen 0 (10) and 5 (5), excluded 1 (9) and banned 2 (8) would have competed;
    # excluded 9 (score 1) would not.
    [ranked] = rank_lists_counted(
        SCORES[None, :], [3], catalogue(), [[0, 5]], [[1, 0, 9]], ban_list=parse_ban_list("s2")
    )
    assert items(ranked.items) == [3, 4, 6]
    assert ranked.removed == RemovedItems(seen=2, excluded=1, ban_list=1, artist_cap=0)
    # Banning the seen 5 and the excluded 1 as well changes no count: each was removed earlier.
    [banned_too] = rank_lists_counted(
        SCORES[None, :],
        [3],
        catalogue(),
        [[0, 5]],
        [[1, 0, 9]],
        ban_list=parse_ban_list("s2\ns5\ns1"),
    )
    assert banned_too == ranked


def test_the_artist_cap_counts_the_items_it_skipped_to_fill_the_list() -> None:
    config = PostProcessConfig(max_per_artist=1)
    full, short = rank_lists_counted(
        np.stack([SCORES, SCORES]), [3, 10], catalogue(), [[], []], [[], []], config=config
    )
    assert items(full.items) == [0, 4, 7]  # 1, 2, 3 (A) and 5, 6 (B) skipped on the way
    assert full.removed == RemovedItems(artist_cap=5)
    assert items(short.items) == [0, 4, 7]  # a short list: every other item was skipped
    assert short.removed == RemovedItems(artist_cap=7)


@pytest.mark.parametrize(
    "config",
    [
        PostProcessConfig(),
        PostProcessConfig(max_per_artist=1),
        PostProcessConfig(max_per_artist=2, rerank="diversity", rerank_weight=0.5),
    ],
    ids=["top-k", "artist cap", "diversity"],
)
def test_counted_lists_are_the_lists_of_rank_lists(config: PostProcessConfig) -> None:
    rng = np.random.default_rng(5)
    scores = rng.random((4, 10)).astype(np.float32)
    ks, seen, excluded = [3, 1, 6, 0], [[0], [], [9, 8], [2]], [[1], [3], [], []]
    ban_list = parse_ban_list("s4")
    counted = rank_lists_counted(
        scores, ks, catalogue(), seen, excluded, ban_list=ban_list, config=config
    )
    plain = rank_lists(
        scores,
        ks,
        catalogue(),
        [s + e for s, e in zip(seen, excluded)],
        ban_list=ban_list,
        config=config,
    )
    assert [ranked.items for ranked in counted] == plain


@pytest.mark.parametrize("seed", range(30))
def test_a_summed_weight_row_is_ranked_and_counted_as_the_general_path(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_items = int(rng.integers(2, 80))
    # Few distinct weights, so sums tie often (the tie order is tested), and (every other seed)
    # some not finite, which no bounds can bound.
    weights = (rng.integers(-3, 4, (n_items, n_items)) / 4).astype(np.float32)
    if seed % 2 == 0:
        weights[rng.random((n_items, n_items)) < 0.02] = rng.choice([np.nan, np.inf, -np.inf])
    bounds = weight_row_bounds(weights)
    assert (bounds is None) == (not np.isfinite(weights).all())
    keys = [f"s{item}" for item in range(n_items)]
    ranking = RankingCatalogue(keys, [f"a{item % 5}" for item in range(n_items)], np.ones(n_items))
    # Repeats and indices outside the catalogue (ignored by both paths) included.
    history = rng.integers(-2, n_items + 2, int(rng.integers(1, 12)))
    excluded = rng.integers(-1, n_items + 1, int(rng.integers(0, 5)))
    ban_list = parse_ban_list("\n".join(rng.choice(keys, int(rng.integers(0, 4)))))
    k = int(rng.integers(1, n_items + 3))
    fast = rank_weight_row_sum(weights, history, excluded, k, ranking, ban_list)
    scores = sum_dense_rows([as_history(history, n_items)], weights)
    if not np.isfinite(scores).any():
        assert fast is None  # the general path falls back to popularity
        return
    [general] = rank_lists_counted(scores, [k], ranking, [history], [excluded], ban_list=ban_list)
    assert fast == general
    if bounds is not None:  # only the blocks of columns that can reach the list added up
        bounded = rank_weight_row_sum(weights, history, excluded, k, ranking, ban_list, bounds)
        assert bounded == general
    # The same row kept from an earlier request (a known user's) ranks the same.
    assert rank_score_row(scores[0], history, excluded, k, ranking, ban_list) == general


def test_a_row_with_no_finite_score_is_left_to_the_general_path() -> None:
    weights = np.full((3, 3), np.nan, dtype=np.float32)
    ranking = RankingCatalogue(["a", "b", "c"], ["", "", ""], np.ones(3))
    assert rank_weight_row_sum(weights, np.array([0]), np.array([], np.int64), 2, ranking) is None
    assert rank_score_row(weights[0], np.array([0]), np.array([], np.int64), 2, ranking) is None
