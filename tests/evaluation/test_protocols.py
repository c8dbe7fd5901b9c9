"""Protocols: every-position vs last-position scoring, defaults per task, splits from datasets."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from segue.data.dataset import Dataset
from segue.data.interactions import Interactions
from segue.data.splits import every_position_cases, last_position_cases, split_by_playlist
from segue.evaluation import evaluator
from segue.evaluation.evaluator import full_ranking_metrics
from segue.evaluation.protocols import (
    PROTOCOLS,
    ProtocolError,
    build_split,
    default_protocol,
    get_protocol,
)
from segue.models.base import create_model
from segue.sample.synth import generate_playlists
from segue.settings import load_settings


def test_playlist_holdout_scores_every_position_and_the_last() -> None:
    """Most-popular on a hand-made set; popularity order 0, 1, then 2, 3, 4 (ties by index)."""
    train = Interactions([np.array([0, 1, 2]), np.array([0, 1, 3]), np.array([0, 4])], 5)
    held_out = Interactions([np.array([0, 2, 1]), np.array([3, 4])], 5, ["a", "b"])
    cases = every_position_cases(held_out)
    # case a1: history [0] -> ranking 1, 2, 3, 4; target 2 at rank 2
    # case a2: history [0, 2] -> ranking 1, 3, 4; target 1 at rank 1
    # case b1: history [3] -> ranking 0, 1, 2, 4; target 4 at rank 4 (a miss at K=2)
    model = create_model("most-popular").fit(train)
    metrics = get_protocol("playlist-holdout").evaluate(model, cases, (1, 2))
    rank_two = 1 / math.log2(3)
    assert metrics["ndcg_at_2"] == pytest.approx((rank_two + 1 + 0) / 3)
    assert metrics["mrr_at_2"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert metrics["hit_rate_at_2"] == pytest.approx(2 / 3)
    assert metrics["hit_rate_at_1"] == pytest.approx(1 / 3)
    # last positions only: a2 (hit at rank 1) and b1 (miss)
    assert metrics["last_ndcg_at_2"] == pytest.approx(0.5)
    assert metrics["last_mrr_at_2"] == pytest.approx(0.5)
    assert metrics["last_hit_rate_at_1"] == pytest.approx(0.5)


def test_other_protocols_report_no_last_position_metrics() -> None:
    train = Interactions([np.array([0, 1, 2])], 3)
    cases = every_position_cases(Interactions([np.array([0, 1])], 3, ["a"]))
    model = create_model("most-popular").fit(train)
    metrics = get_protocol("random-holdout").evaluate(model, cases, (2,))
    assert "ndcg_at_2" in metrics
    assert not [key for key in metrics if key.startswith("last_")]


def test_defaults_per_task_and_unknown_names() -> None:
    assert default_protocol("next-song") == "playlist-holdout"
    assert default_protocol("user-items") == "random-holdout"
    assert set(PROTOCOLS) == {
        "random-holdout",
        "leave-last-one-out",
        "playlist-holdout",
        "temporal",
    }
    with pytest.raises(ProtocolError, match="unknown protocol"):
        get_protocol("k-fold")
    with pytest.raises(ProtocolError, match="unknown task"):
        default_protocol("ads")


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_every_protocol_splits_a_ratings_dataset_deterministically(
    tmp_path: Path, protocol: str, make_ratings: Callable[..., Dataset]
) -> None:
    dataset = make_ratings(tmp_path / "ratings")
    evaluation = load_settings(overrides=["evaluation.holdout_per_user=3"]).evaluation
    first = build_split(dataset, protocol, evaluation)
    again = build_split(Dataset.load(dataset.directory), protocol, evaluation)
    assert first.protocol == protocol
    assert len(first.test) > 0
    assert first.description == again.description
    for a, b in zip(first.test.targets, again.test.targets, strict=True):
        assert np.array_equal(a, b)
    for history, targets in zip(first.test.histories, first.test.targets, strict=True):
        assert not np.isin(targets, history).any()


def test_leave_last_one_out_orders_ratings_by_time(
    tmp_path: Path, make_ratings: Callable[..., Dataset]
) -> None:
    dataset = make_ratings(tmp_path / "ratings")
    frame = dataset.interactions
    split = build_split(dataset, "leave-last-one-out", load_settings().evaluation)
    latest = frame.sort_values("timestamp").groupby("sequence")["item"].last()
    assert [int(t[0]) for t in split.test.targets] == [
        int(latest[sequence_id]) for sequence_id in split.test.sequence_ids
    ]


def test_leaky_only_for_random_holdout(
    tmp_path: Path, make_ratings: Callable[..., Dataset], make_playlists: Callable[..., Dataset]
) -> None:
    ratings = make_ratings(tmp_path / "ratings")
    playlists = make_playlists(tmp_path / "playlists")
    evaluation = load_settings(overrides=["evaluation.holdout_per_user=3"]).evaluation
    leaky = build_split(ratings, "random-holdout", evaluation, leaky=True)
    assert leaky.protocol == "random-holdout-leaky"
    assert leaky.description["leaky"] is True
    with pytest.raises(ProtocolError, match="leaky"):
        build_split(playlists, "playlist-holdout", evaluation, leaky=True)


def test_temporal_needs_timestamps(tmp_path: Path, make_playlists: Callable[..., Dataset]) -> None:
    playlists = make_playlists(tmp_path / "playlists")
    with pytest.raises(ProtocolError, match="timestamp"):
        build_split(playlists, "temporal", load_settings().evaluation)


def test_a_dataset_too_small_for_the_protocol_is_refused(
    tmp_path: Path, make_ratings: Callable[..., Dataset]
) -> None:
    ratings = make_ratings(tmp_path / "ratings", per_user=4)
    with pytest.raises(ProtocolError, match="no test cases"):
        build_split(ratings, "random-holdout", load_settings().evaluation)  # N = 10 > 4


def synthetic_playlists(n_playlists: int = 120, n_songs: int = 300) -> Interactions:
    """Ordered playlists of the synthetic generator's songs (its truth, no parsing needed)."""
    _, truth = generate_playlists(n_playlists, n_songs, seed=5, mean_length=25.0, with_truth=True)
    sequences = [ids[ids >= 0] for ids in truth.song_ids if (ids >= 0).sum() >= 2]
    return Interactions(sequences, n_songs, [f"p{i}" for i in range(len(sequences))])


@pytest.mark.parametrize("name", ["most-popular", "markov", "session-knn"])
def test_playlist_holdout_gives_the_figures_of_scoring_each_case_set_apart(name: str) -> None:
    """Sampling off (the default), every metric equals the former two evaluations: every
    position, then the last positions scored again on their own, in batches of one case."""
    split = split_by_playlist(
        synthetic_playlists(), validation_fraction=0.1, test_fraction=0.2, seed=1
    )
    model = create_model(name).fit(split.train)
    counts = split.train.item_counts()
    metrics = get_protocol("playlist-holdout").evaluate(
        model, split.test, (5, 10), item_counts=counts, progress=True
    )
    every = full_ranking_metrics(model, split.test, (5, 10), item_counts=counts, batch_size=1)
    last = full_ranking_metrics(
        model, last_position_cases(split.test), (5, 10), item_counts=counts, batch_size=1
    )
    assert metrics == {**every, **{f"last_{key}": value for key, value in last.items()}}
    assert 0.0 < metrics["hit_rate_at_10"] < 1.0


def test_sampled_positions_keep_the_last_position_figures() -> None:
    playlists = synthetic_playlists()
    evaluate = get_protocol("playlist-holdout").evaluate
    figures = {}
    for per_sequence in (0, 3):
        split = split_by_playlist(
            playlists,
            validation_fraction=0.1,
            test_fraction=0.2,
            seed=1,
            positions_per_sequence=per_sequence,
        )
        model = create_model("markov").fit(split.train)
        figures[per_sequence] = evaluate(model, split.test, (10,))
        assert (
            len(split.test) <= (3 if per_sequence else 1000) * split.description["test_sequences"]
        )
    last = [key for key in figures[0] if key.startswith("last_")]
    assert last and all(figures[3][key] == figures[0][key] for key in last)
    assert figures[3]["ndcg_at_10"] != figures[0]["ndcg_at_10"]  # a sample, not every position


def test_the_setting_reaches_the_playlist_split(
    tmp_path: Path, make_playlists: Callable[..., Dataset]
) -> None:
    playlists = make_playlists(tmp_path / "playlists")
    evaluation = load_settings(overrides=["evaluation.positions_per_sequence=2"]).evaluation
    split = build_split(playlists, "playlist-holdout", evaluation)
    assert split.description["positions_per_sequence"] == 2
    assert len(split.test) == 2 * split.description["test_sequences"]
    assert (
        "positions_per_sequence"
        not in build_split(playlists, "playlist-holdout", load_settings().evaluation).description
    )


def test_progress_shows_cases_done_and_time_left(monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[dict] = []

    class RecordingBar:
        def __init__(self, **options: object) -> None:
            shown.append({"options": options, "updates": []})

        def update(self, count: int) -> None:
            shown[-1]["updates"].append(count)

        def close(self) -> None:
            shown[-1]["closed"] = True

    import tqdm.auto

    monkeypatch.setattr(tqdm.auto, "tqdm", RecordingBar)
    train = Interactions([np.array([0, 1, 2])], 3)
    cases = every_position_cases(Interactions([np.array([0, 1, 2])] * 3, 3, ["a", "b", "c"]))
    evaluator.rank_holdout(
        create_model("most-popular").fit(train), cases, 2, batch_size=4, progress=True
    )
    (bar,) = shown
    # a total in cases is what lets the bar estimate the time left
    assert bar["options"]["total"] == 6 and bar["updates"] == [4, 2] and bar["closed"]
