"""Protocols: every-position vs last-position scoring, defaults per task, splits from datasets."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from segue.data.dataset import Dataset
from segue.data.interactions import Interactions
from segue.data.splits import every_position_cases
from segue.evaluation.protocols import (
    PROTOCOLS,
    ProtocolError,
    build_split,
    default_protocol,
    get_protocol,
)
from segue.models.base import create_model
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
